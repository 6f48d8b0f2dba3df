# Persistent homes of tess-private: an encrypted EFS file system, reachable over NFS only from
# the cluster's nodes, with one access point per user (uid/gid 1000) under /homes.

resource "aws_kms_key" "efs" {
  description             = "${var.cluster_name}: encryption of the EFS homes"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "efs" {
  name          = "alias/${var.cluster_name}-efs-homes"
  target_key_id = aws_kms_key.efs.key_id
}

resource "aws_efs_file_system" "homes" {
  creation_token   = "${var.cluster_name}-homes"
  encrypted        = true
  kms_key_id       = aws_kms_key.efs.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  # Homes go quiet between sessions: cold files move to cheaper storage and come back on use.
  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  lifecycle_policy {
    transition_to_primary_storage_class = "AFTER_1_ACCESS"
  }

  tags = { Name = "${var.cluster_name}-homes" }
}

resource "aws_efs_backup_policy" "homes" {
  file_system_id = aws_efs_file_system.homes.id

  backup_policy {
    status = "ENABLED"
  }
}

# Mounts only through the mount targets, and only over TLS (the CSI driver mounts with TLS).
resource "aws_efs_file_system_policy" "homes" {
  file_system_id = aws_efs_file_system.homes.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "MountThroughMountTargets"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        Resource  = aws_efs_file_system.homes.arn
        Condition = { Bool = { "elasticfilesystem:AccessedViaMountTarget" = "true" } }
      },
      {
        Sid       = "DenyUnencryptedTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "*"
        Resource  = aws_efs_file_system.homes.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_security_group" "efs" {
  name        = "${var.cluster_name}-efs"
  description = "NFS to the EFS homes, from the cluster's nodes only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.cluster_name}-efs" }
}

# Managed nodes carry the cluster security group, so that is the only source allowed.
resource "aws_vpc_security_group_ingress_rule" "efs_nfs_from_nodes" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the EKS nodes"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

resource "aws_efs_mount_target" "homes" {
  count = length(aws_subnet.private)

  file_system_id  = aws_efs_file_system.homes.id
  subnet_id       = aws_subnet.private[count.index].id
  security_groups = [aws_security_group.efs.id]
}

# The EFS CSI driver: its controller creates and deletes the access points, through its own
# role (Pod Identity); the managed policy limits it to access points it tagged itself.
resource "aws_iam_role" "efs_csi" {
  name               = "${var.cluster_name}-efs-csi"
  assume_role_policy = local.pod_identity_trust["efs_csi"]
}

resource "aws_iam_role_policy_attachment" "efs_csi" {
  role       = aws_iam_role.efs_csi.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
}

resource "aws_eks_addon" "efs_csi" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "aws-efs-csi-driver"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  pod_identity_association {
    role_arn        = aws_iam_role.efs_csi.arn
    service_account = local.pod_identities["efs_csi"].service_account
  }

  # The controller is a Deployment: it needs nodes, and mount targets to be useful.
  depends_on = [
    aws_eks_node_group.core,
    aws_efs_mount_target.homes,
    aws_iam_role_policy_attachment.efs_csi,
  ]
}

# What tess-private's singleuser.storage.dynamic.storageClass names. Every user's claim gets
# its own access point: a directory under /homes, owned by uid/gid 1000 and private to them.
# Retain: deleting a claim (or the hub) never deletes a home.
resource "kubernetes_storage_class_v1" "efs_homes" {
  metadata {
    name = "efs-homes"
  }

  storage_provisioner    = "efs.csi.aws.com"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "Immediate"
  allow_volume_expansion = false # EFS has no size to expand

  parameters = {
    provisioningMode = "efs-ap"
    fileSystemId     = aws_efs_file_system.homes.id
    uid              = "1000"
    gid              = "1000"
    directoryPerms   = "700"
    basePath         = "/homes"
  }

  depends_on = [aws_eks_addon.efs_csi, aws_eks_access_policy_association.admin]
}
