variable "region" {
  description = "AWS region of the cluster and everything it uses."
  type        = string
}

variable "cluster_name" {
  description = "Name of the EKS cluster; also the prefix of the names of its parts."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.cluster_name))
    error_message = "cluster_name: lower-case letters, digits and dashes, at most 39 characters."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, e.g. \"1.35\"."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version: a minor version such as \"1.35\"."
  }
}

variable "admin_role_arn" {
  description = <<-EOT
    IAM role given cluster-admin through an EKS access entry: the role operators and the
    pipeline assume (terraform itself must run as it, to manage the Kubernetes resources here).
    Given per account, e.g. TF_VAR_admin_role_arn.
  EOT
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.admin_role_arn))
    error_message = "admin_role_arn: an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), not a user or an STS session."
  }
}

variable "endpoint_public_access_cidrs" {
  description = <<-EOT
    CIDRs that may reach the public Kubernetes API endpoint (nodes use the private one). Every
    request is still authenticated through IAM and access entries; narrow this to the
    pipeline's and operators' egress addresses where they are fixed.
  EOT
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "vpc_cidr" {
  description = "Address range of the VPC: /20 private subnets for nodes and pods, /24 public ones."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones the subnets, nodes and EFS mount targets span."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count: EKS needs subnets in at least two availability zones."
  }
}

variable "exclude_zone_ids" {
  description = "Availability zone IDs not to use, e.g. zones where EKS has no capacity."
  type        = list(string)
  default     = []
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone (survives a zone outage) instead of a single shared one."
  type        = bool
  default     = false
}

variable "core_instance_types" {
  description = "Instance types of the core node group (hub, proxy, system pods)."
  type        = list(string)
}

variable "core_min_size" {
  description = "Fewest nodes of the core node group."
  type        = number
}

variable "core_max_size" {
  description = "Most nodes of the core node group."
  type        = number

  validation {
    condition     = var.core_max_size >= var.core_min_size && var.core_min_size >= 1
    error_message = "core node group: need 1 <= core_min_size <= core_max_size."
  }
}

variable "user_instance_types" {
  description = "Instance types of the user node group (single-user servers)."
  type        = list(string)
}

variable "user_min_size" {
  description = "Fewest nodes of the user node group."
  type        = number
}

variable "user_max_size" {
  description = "Most nodes of the user node group."
  type        = number

  validation {
    condition     = var.user_max_size >= var.user_min_size && var.user_min_size >= 0
    error_message = "user node group: need 0 <= user_min_size <= user_max_size."
  }
}

variable "node_disk_size" {
  description = "Root volume of every node, GiB: holds the user image, which is large."
  type        = number
  default     = 100
}

variable "log_retention_days" {
  description = "Days the control plane and VPC flow logs are kept."
  type        = number
  default     = 90
}

variable "cluster_autoscaler_chart_version" {
  description = "Version of the cluster-autoscaler Helm chart."
  type        = string
  default     = "9.59.0"
}

variable "cluster_autoscaler_image_tag" {
  description = "cluster-autoscaler image; its minor version must match kubernetes_version."
  type        = string
  default     = "v1.35.2"

  validation {
    condition     = startswith(var.cluster_autoscaler_image_tag, "v${var.kubernetes_version}.")
    error_message = "cluster_autoscaler_image_tag: its minor version must be kubernetes_version's."
  }
}

variable "ecr_keep_images" {
  description = "Tagged user images kept in ECR; older ones expire (prod runs a recent one)."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Extra tags on every AWS resource."
  type        = map(string)
  default     = {}
}

variable "state_bucket" {
  description = <<-EOT
    S3 bucket of this state and of the deploy locks (TESS_STATE_BUCKET): the deployer role
    may use it. Given per account; the pipeline passes it as TF_VAR_state_bucket.
  EOT
  type        = string
}

variable "dagster_db_instance_class" {
  description = "RDS instance class of the Dagster control plane's Postgres."
  type        = string
  default     = "db.t4g.micro"
}

variable "dagster_db_engine_version" {
  description = "Postgres major version of the Dagster control plane's database."
  type        = string
  default     = "16"
}

variable "assume_admin_role" {
  description = "Apply as admin_role_arn, assumed from the caller's credentials (the control plane's deployer role does)."
  type        = bool
  default     = false
}
