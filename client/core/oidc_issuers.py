"""The CI OIDC issuers trusted publishing knows by name (client and hub agree on them)."""

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
ISSUER_ALIASES = {"github": GITHUB_ISSUER, "gitlab": GITLAB_ISSUER}
