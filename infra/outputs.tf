# What the pipeline reads after an apply: the infra assets' values, and how it reaches the
# cluster (a temporary kubeconfig per operation) and the registry.

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "The API's CA certificate, base64-encoded PEM (kubeconfig certificate-authority-data)."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "region" {
  description = "AWS region of the cluster, the registry and the file system."
  value       = var.region
}

output "efs_id" {
  description = "ID of the EFS file system of the homes."
  value       = aws_efs_file_system.homes.id
}

output "storage_class" {
  description = "Storage class of persistent homes (tess-private's singleuser.storage)."
  value       = kubernetes_storage_class_v1.efs_homes.metadata[0].name
}

output "ecr_repository_url" {
  description = "Repository of the user image, without a tag."
  value       = aws_ecr_repository.user_image.repository_url
}

output "node_groups" {
  description = "The managed node groups: sizes, instance types, the node purpose label and taints."
  value = {
    for group in [aws_eks_node_group.core, aws_eks_node_group.user] : group.node_group_name => {
      min_size       = group.scaling_config[0].min_size
      max_size       = group.scaling_config[0].max_size
      instance_types = group.instance_types
      node_purpose   = group.labels["hub.jupyter.org/node-purpose"]
      taints         = [for t in group.taint : "${t.key}=${t.value}:${t.effect}"]
    }
  }
}

output "control_plane" {
  description = "What the Dagster chart's values are made from (tess-platform control-plane values)."
  value = {
    image_repository     = aws_ecr_repository.control_plane.repository_url
    db_host              = aws_db_instance.dagster.address
    db_port              = aws_db_instance.dagster.port
    db_name              = aws_db_instance.dagster.db_name
    db_user              = aws_db_instance.dagster.username
    logs_bucket          = aws_s3_bucket.dagster_logs.bucket
    git_crypt_key_secret = aws_secretsmanager_secret.git_crypt_key.name
    admin_role_arn       = var.admin_role_arn
    deployer_role_arn    = aws_iam_role.deployer.arn
  }
}
