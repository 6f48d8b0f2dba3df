# The user image's repository: tags are content hashes, so they are immutable; every push is
# scanned; old images expire.

resource "aws_ecr_repository" "user_image" {
  name                 = "tess-user-image"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false # never drop images a release may still run

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS" # the AWS-managed ECR key: nodes pull without KMS permissions
  }
}

resource "aws_ecr_lifecycle_policy" "user_image" {
  repository = aws_ecr_repository.user_image.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of interrupted pushes"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest tagged images (staging and prod run recent ones)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
