# cluster-autoscaler: grows the user node group when servers wait for room, and shrinks idle
# nodes away. It finds the node groups' auto scaling groups by the tags EKS puts on them, and
# may only change the groups that carry this cluster's tag.

resource "aws_iam_role" "cluster_autoscaler" {
  name               = "${var.cluster_name}-cluster-autoscaler"
  assume_role_policy = local.pod_identity_trust["cluster_autoscaler"]
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  name = "cluster-autoscaler"
  role = aws_iam_role.cluster_autoscaler.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "ScaleOnlyThisClustersGroups"
        Effect = "Allow"
        Action = [
          "autoscaling:SetDesiredCapacity",
          "autoscaling:TerminateInstanceInAutoScalingGroup",
        ]
        Resource = "*" # narrowed by the tags below: auto scaling group names are generated
        Condition = {
          StringEquals = {
            "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned"
            "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled"             = "true"
          }
        }
      },
      {
        Sid    = "Discover"
        Effect = "Allow"
        Action = [
          "autoscaling:DescribeAutoScalingGroups",
          "autoscaling:DescribeAutoScalingInstances",
          "autoscaling:DescribeLaunchConfigurations",
          "autoscaling:DescribeScalingActivities",
          "autoscaling:DescribeTags",
          "ec2:DescribeImages",
          "ec2:DescribeInstanceTypes",
          "ec2:DescribeLaunchTemplateVersions",
          "ec2:GetInstanceTypesFromInstanceRequirements",
        ]
        Resource = "*" # describe calls take no resource
      },
      {
        Sid      = "ReadThisClustersNodeGroups"
        Effect   = "Allow"
        Action   = ["eks:DescribeNodegroup"]
        Resource = "arn:${local.partition}:eks:${var.region}:${local.account_id}:nodegroup/${var.cluster_name}/*"
      },
    ]
  })
}

resource "aws_eks_pod_identity_association" "cluster_autoscaler" {
  cluster_name    = aws_eks_cluster.this.name
  namespace       = local.pod_identities["cluster_autoscaler"].namespace
  service_account = local.pod_identities["cluster_autoscaler"].service_account
  role_arn        = aws_iam_role.cluster_autoscaler.arn

  depends_on = [aws_eks_addon.pod_identity_agent]
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  namespace  = local.pod_identities["cluster_autoscaler"].namespace
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.cluster_autoscaler_chart_version

  atomic          = true
  wait            = true
  cleanup_on_fail = true
  timeout         = 600

  values = [yamlencode({
    cloudProvider = "aws"
    awsRegion     = var.region # pods cannot reach the instance metadata (hop limit 1)

    autoDiscovery = {
      clusterName = aws_eks_cluster.this.name
    }

    image = {
      tag = var.cluster_autoscaler_image_tag
    }

    rbac = {
      serviceAccount = {
        create = true
        name   = local.pod_identities["cluster_autoscaler"].service_account
      }
    }

    # On a core node: never on a user node it might scale away from under itself.
    nodeSelector = {
      "hub.jupyter.org/node-purpose" = "core"
    }

    extraArgs = {
      "balance-similar-node-groups"   = true
      "expander"                      = "least-waste"
      "skip-nodes-with-local-storage" = false
      "skip-nodes-with-system-pods"   = false
    }
  })]

  depends_on = [
    aws_eks_pod_identity_association.cluster_autoscaler,
    aws_iam_role_policy.cluster_autoscaler,
    aws_eks_access_policy_association.admin,
    aws_eks_node_group.core,
  ]
}
