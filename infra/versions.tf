# Terraform for the aws target: the EKS cluster the hubs run on, its node groups, EFS homes,
# the ECR repository of the user image, the cluster-autoscaler and what the Dagster control
# plane needs (dagster.tf).
#
# State lives in S3 with S3-native locking. The bucket, key and region are not written here
# (they differ per account) but given at init, as the pipeline does:
#
#   terraform init -input=false \
#     -backend-config=bucket=BUCKET -backend-config=key=tess-platform/infra.tfstate \
#     -backend-config=region=us-east-1

terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  backend "s3" {
    use_lockfile = true # S3 conditional writes: no DynamoDB lock table needed
    encrypt      = true
  }
}
