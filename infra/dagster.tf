# The control plane: Dagster in the cluster (the official Dagster chart, installed by the
# bootstrap; see the README), and what it needs from AWS: a Postgres database for its runs and
# events, a bucket for the runs' compute logs, the git-crypt key in Secrets Manager, a
# repository for its image, and one service account whose Pod Identity role holds what a
# deploy needs. The pipeline refuses to destroy or replace any of these without the destroy
# approval (tess_platform/backends/terraform.py: STATEFUL_TYPES).

locals {
  dagster_namespace = local.pod_identities["deployer"].namespace
}

resource "aws_ecr_repository" "control_plane" {
  name                 = "tess-platform"
  image_tag_mutability = "IMMUTABLE" # tagged by the git SHA it was built from
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

# The database: private subnets, reachable from the cluster's nodes only, encrypted, TLS
# required (rds.force_ssl is on by default from Postgres 15), never deleted by accident.
resource "aws_db_subnet_group" "dagster" {
  name       = "${var.cluster_name}-dagster"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_security_group" "dagster_db" {
  name        = "${var.cluster_name}-dagster-db"
  description = "Postgres of the Dagster control plane, from the cluster's nodes only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.cluster_name}-dagster-db" }
}

resource "aws_vpc_security_group_ingress_rule" "dagster_db_from_nodes" {
  security_group_id            = aws_security_group.dagster_db.id
  description                  = "Postgres from the EKS nodes"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

# Kept in the state (an encrypted bucket, itself a secret store) and in one Kubernetes secret
# the chart's pods read; never in values, logs or a command line.
resource "random_password" "dagster_db" {
  length  = 40
  special = false
}

resource "aws_db_instance" "dagster" {
  identifier     = "${var.cluster_name}-dagster"
  engine         = "postgres"
  engine_version = var.dagster_db_engine_version
  instance_class = var.dagster_db_instance_class

  allocated_storage     = 20
  max_allocated_storage = 100
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name  = "dagster"
  username = "dagster"
  password = random_password.dagster_db.result

  db_subnet_group_name   = aws_db_subnet_group.dagster.name
  vpc_security_group_ids = [aws_security_group.dagster_db.id]
  publicly_accessible    = false

  backup_retention_period   = 7
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.cluster_name}-dagster-final"
  apply_immediately         = false # engine and class changes wait for the maintenance window
}

resource "aws_s3_bucket" "dagster_logs" {
  bucket_prefix = "${var.cluster_name}-dagster-logs-"
}

resource "aws_s3_bucket_public_access_block" "dagster_logs" {
  bucket                  = aws_s3_bucket.dagster_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dagster_logs" {
  bucket = aws_s3_bucket.dagster_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "dagster_logs" {
  bucket = aws_s3_bucket.dagster_logs.id

  rule {
    id     = "expire-compute-logs"
    status = "Enabled"

    filter {
      prefix = "compute-logs/"
    }

    expiration {
      days = var.log_retention_days
    }
  }
}

# The deployment repository's git-crypt key. Terraform makes the secret, never its value: the
# bootstrap stores it once (`aws secretsmanager put-secret-value`), so no state holds it.
resource "aws_secretsmanager_secret" "git_crypt_key" {
  name                    = "${var.cluster_name}/git-crypt-key"
  description             = "git-crypt key of the deployment repository (git-crypt export-key)"
  recovery_window_in_days = 30
}

resource "kubernetes_namespace_v1" "dagster" {
  metadata {
    name = local.dagster_namespace
  }

  depends_on = [aws_eks_access_policy_association.admin]
}

resource "kubernetes_service_account_v1" "deployer" {
  metadata {
    name      = local.pod_identities["deployer"].service_account
    namespace = kubernetes_namespace_v1.dagster.metadata[0].name
  }
}

# The name and key the Dagster chart reads (global.postgresqlSecretName, postgresql-password).
resource "kubernetes_secret_v1" "dagster_db" {
  metadata {
    name      = "dagster-postgresql"
    namespace = kubernetes_namespace_v1.dagster.metadata[0].name
  }

  data = {
    "postgresql-password" = random_password.dagster_db.result
  }
}

# What a deploy does from a run pod: read the deployment repository's key, keep the terraform
# state and deploy locks, read and push the images, reach the cluster (its access entry below
# makes helm an admin there), write the compute logs. Changes to infra/ itself (VPC, IAM, EKS)
# are applied as admin_role_arn, which this role may assume and nothing else may widen.
resource "aws_iam_role" "deployer" {
  name               = "${var.cluster_name}-deployer"
  assume_role_policy = local.pod_identity_trust["deployer"]
}

resource "aws_iam_role_policy" "deployer" {
  name = "deploy"
  role = aws_iam_role.deployer.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "GitCryptKey"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = aws_secretsmanager_secret.git_crypt_key.arn
      },
      {
        Sid    = "StateLocksAndComputeLogs"
        Effect = "Allow"
        Action = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
        Resource = [
          "arn:${local.partition}:s3:::${var.state_bucket}",
          "arn:${local.partition}:s3:::${var.state_bucket}/*",
          aws_s3_bucket.dagster_logs.arn,
          "${aws_s3_bucket.dagster_logs.arn}/*",
        ]
      },
      {
        Sid      = "RegistryLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*" # takes no resource
      },
      {
        Sid    = "Images"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:DescribeImages",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ]
        Resource = [aws_ecr_repository.user_image.arn, aws_ecr_repository.control_plane.arn]
      },
      {
        Sid      = "Cluster"
        Effect   = "Allow"
        Action   = ["eks:DescribeCluster"]
        Resource = aws_eks_cluster.this.arn
      },
      {
        Sid      = "Infrastructure"
        Effect   = "Allow"
        Action   = ["sts:AssumeRole", "sts:TagSession"]
        Resource = var.admin_role_arn
      },
    ]
  })
}

resource "aws_eks_pod_identity_association" "deployer" {
  cluster_name    = aws_eks_cluster.this.name
  namespace       = local.dagster_namespace
  service_account = local.pod_identities["deployer"].service_account
  role_arn        = aws_iam_role.deployer.arn

  depends_on = [aws_eks_addon.pod_identity_agent]
}

resource "aws_eks_access_entry" "deployer" {
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_iam_role.deployer.arn
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "deployer" {
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.deployer.principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}
