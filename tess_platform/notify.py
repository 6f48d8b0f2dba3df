"""Deploy outcomes told where people look: a Slack-compatible webhook (a chat channel) and a
GitHub commit status on the deployed SHA. Both only when configured; the webhook's URL and the
token are secrets: they are sent, never logged, and never in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .http_api import call, github_headers
from .settings import Settings

SUCCESS, FAILURE = "success", "failure"
STATUS_CONTEXT = "tess-platform"  # the commit status's context, one per job: tess-platform/<job>
DESCRIPTION_MAX = 140  # GitHub truncates a status description there


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as people are told."""

    job: str
    run_id: str
    state: str  # SUCCESS or FAILURE
    run_url: str
    sha: str | None = None
    env: str | None = None
    hubs: dict[str, str] = field(default_factory=dict)  # release name to URL
    reasons: tuple[str, ...] = ()  # a failure's or refusal's, first line each

    @property
    def summary(self) -> str:
        where = f" {self.env}" if self.env else ""
        at = f" at {self.sha[:12]}" if self.sha else ""
        verb = "succeeded" if self.state == SUCCESS else "failed"
        return f"{self.job}{where}{at} {verb}"

    def text(self) -> str:
        """The chat message: Slack's mrkdwn, readable as plain text elsewhere."""
        mark = ":white_check_mark:" if self.state == SUCCESS else ":x:"
        lines = [f"{mark} *{self.summary}* (<{self.run_url}|run {self.run_id[:8]}>)"]
        lines += [f"• {name}: {url}" for name, url in sorted(self.hubs.items())]
        lines += [f"> {reason}" for reason in self.reasons]
        return "\n".join(lines)


@dataclass(frozen=True)
class Notifier:
    webhook_url: str | None = None
    github_token: str | None = None
    github_repo: str | None = None  # owner/name of the deployment repository
    github_api: str = "https://api.github.com"

    @classmethod
    def of(cls, settings: Settings) -> Notifier:
        return cls(
            settings.notify_webhook,
            settings.github_token,
            settings.github_repo,
            settings.github_api,
        )

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or (self.github_token and self.github_repo))

    def tell(self, outcome: Outcome) -> list[str]:
        """Post `outcome` wherever configured; what was done, one line each."""
        done = []
        if self.webhook_url:
            where = "the webhook (TESS_NOTIFY_WEBHOOK)"
            call(where, "POST", self.webhook_url, {"text": outcome.text()})
            done.append("posted to the webhook")
        if self.github_token and self.github_repo and outcome.sha:
            description = outcome.reasons[0] if outcome.reasons else outcome.summary
            call(
                f"GitHub's statuses API for {self.github_repo}",
                "POST",
                f"{self.github_api.rstrip('/')}/repos/{self.github_repo}/statuses/{outcome.sha}",
                {
                    "state": outcome.state,
                    "target_url": outcome.run_url,
                    "description": description[:DESCRIPTION_MAX],
                    "context": f"{STATUS_CONTEXT}/{outcome.job}",
                },
                github_headers(self.github_token),
            )
            done.append(f"commit status {outcome.state} on {outcome.sha[:12]}")
        return done
