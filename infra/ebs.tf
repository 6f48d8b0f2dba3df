# The hub database's volume (hub.db.pvc, sqlite): EBS gp3 through the EBS CSI driver. EKS
# clusters from 1.30 come with neither the driver nor a default storage class: without these,
# the hub's claim stays Pending and `helm upgrade --atomic --wait` times out.
resource "aws_iam_role" "ebs_csi" {
  name               = "${var.cluster_name}-ebs-csi"
  assume_role_policy = local.pod_identity_trust["ebs_csi"]
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}

resource "aws_eks_addon" "ebs_csi" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "aws-ebs-csi-driver"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  pod_identity_association {
    role_arn        = aws_iam_role.ebs_csi.arn
    service_account = local.pod_identities["ebs_csi"].service_account
  }

  # The controller is a Deployment: it needs nodes.
  depends_on = [
    aws_eks_node_group.core,
    aws_iam_role_policy_attachment.ebs_csi,
  ]
}

# What hub_config/values.yaml's hub.db.pvc.storageClassName names. Retain: the hub database
# (users, tokens, named servers) outlives a deleted claim. WaitForFirstConsumer: the volume
# is made in the zone of the node the hub lands on.
resource "kubernetes_storage_class_v1" "hub_db" {
  metadata {
    name = "gp3"
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
  }

  depends_on = [aws_eks_addon.ebs_csi, aws_eks_access_policy_association.admin]
}
