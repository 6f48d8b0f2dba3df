"""The run tags of tess-platform: public names operators and tools set and read."""

SHA_TAG = "tess/git_sha"  # the commit a run deploys
ENV_TAG = "tess/env"  # the environment it deploys: the run queue allows one per value
APPROVER_TAG = "tess/approved_by"  # who approved a promotion to prod
APPROVE_DESTROY_TAG = "tess/approve_destroy"  # lets a terraform plan destroy stateful resources
TRIGGER_TAG = "tess/trigger"  # the sensor that asked for the run
