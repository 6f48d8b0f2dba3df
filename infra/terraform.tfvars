# The aws target. Account-specific values (the admin role, the state bucket) come from the
# pipeline's environment, not from this file.

region             = "us-east-1"
cluster_name       = "tess-platform"
kubernetes_version = "1.35"

# use1-az3 has no EKS control plane capacity.
exclude_zone_ids = ["use1-az3"]
az_count         = 3

core_instance_types = ["m5.large"]
core_min_size       = 1
core_max_size       = 3

user_instance_types = ["m5.large"]
user_min_size       = 1
user_max_size       = 10
