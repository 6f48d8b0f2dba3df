"""The run tags of tess-platform: public names operators and tools set and read, and what a
value set by hand must be."""

from .quoting import quoted

SHA_TAG = "tess/git_sha"  # the commit a run deploys
ENV_TAG = "tess/env"  # the environment it deploys: the run queue allows one per value
APPROVER_TAG = "tess/approved_by"  # who approved a promotion to prod
APPROVE_DESTROY_TAG = "tess/approve_destroy"  # lets a terraform plan destroy stateful resources
TRIGGER_TAG = "tess/trigger"  # the sensor that asked for the run

APPROVER_MAX = 100


def approver_problem(value: str | None) -> str | None:
    """What is wrong with a tess/approved_by value (it is recorded in prod's metadata and in
    logs); None when it names someone."""
    name = (value or "").strip()
    if not name:
        return "must name who approves the promotion"
    if len(name) > APPROVER_MAX or not name.isprintable():
        return f"{quoted(name)} is not a name: printable, at most {APPROVER_MAX} characters"
    return None
