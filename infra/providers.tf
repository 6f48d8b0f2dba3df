provider "aws" {
  region = var.region

  # In the cluster, the pipeline runs as the deployer role (Pod Identity), which applies infra/
  # as the admin role; from a laptop, the admin role's own credentials apply it directly.
  dynamic "assume_role" {
    for_each = var.assume_admin_role ? [var.admin_role_arn] : []
    content {
      role_arn     = assume_role.value
      session_name = "tess-platform-infra"
    }
  }

  default_tags {
    tags = local.tags
  }
}

# The Kubernetes and Helm providers get a fresh EKS token per operation (as `aws eks get-token`
# does), so a saved plan applied later never carries an expired token. Needs the AWS CLI.
provider "kubernetes" {
  host                   = aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", aws_eks_cluster.this.name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes = {
    host                   = aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)

    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", aws_eks_cluster.this.name, "--region", var.region]
    }
  }
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state            = "available"
  exclude_zone_ids = var.exclude_zone_ids
}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  tags = merge(var.tags, {
    "project"    = "tess-platform"
    "managed-by" = "terraform"
  })

  # The service accounts that get AWS roles through EKS Pod Identity, one role each.
  pod_identities = {
    efs_csi            = { namespace = "kube-system", service_account = "efs-csi-controller-sa" }
    ebs_csi            = { namespace = "kube-system", service_account = "ebs-csi-controller-sa" }
    cluster_autoscaler = { namespace = "kube-system", service_account = "cluster-autoscaler" }
    deployer           = { namespace = "dagster", service_account = "tess-deployer" }
  }

  # Each role trusts Pod Identity only for its own service account in this cluster: the
  # session tags EKS sets on the AssumeRole call say which pod asks.
  pod_identity_trust = {
    for name, sa in local.pod_identities : name => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "pods.eks.amazonaws.com" }
        Action    = ["sts:AssumeRole", "sts:TagSession"]
        Condition = {
          StringEquals = {
            "aws:RequestTag/eks-cluster-name"           = var.cluster_name
            "aws:RequestTag/kubernetes-namespace"       = sa.namespace
            "aws:RequestTag/kubernetes-service-account" = sa.service_account
          }
        }
      }]
    })
  }
}
