"""The job summary the action writes at the end of the job: pure (values in, Markdown out).

It leads with what the fleet saved (API calls, hit rate), says how the fleet was (and why, when
degraded), shows the figures that mean trouble (fleet errors, integrity failures, stale answers,
entries too large to share), the rate limit left and what set-up cost, and draws where the
requests were answered as a Mermaid pie. Every figure is the daemon's own counter, shown as is:
one the daemon does not report is left out, never guessed. ``hit_rate`` is a fraction (0..1).
Standard library only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ROWS", "SLICES", "render"]

#: (label, stats key) of the detail table, in order; shown when the daemon reports them.
ROWS = (
    ("Requests", "requests"),
    ("Local cache hits", "local_hits"),
    ("Fleet (peer) hits", "peer_hits"),
    ("Misses", "misses"),
    ("Free revalidations (304)", "revalidations_304"),
    ("Coalesced waits", "coalesced_waits"),
    ("Stale answers served", "stale_served"),
    ("Passed through", "bypassed"),
    ("Too large to share", "too_large_to_share"),
    ("Fleet errors", "fleet_errors"),
    ("Integrity failures", "integrity_failures"),
    ("Errors", "errors"),
    ("GraphQL calls", "graphql_calls"),
    ("Entries in the local cache", "total_entries"),
)

_LABELS = {key: label for label, key in ROWS}

#: Slices of the pie: where each request was answered.
SLICES = (
    ("Local cache", "local_hits"),
    ("Fleet", "peer_hits"),
    ("GitHub, free 304", "revalidations_304"),
    ("GitHub", "misses"),
    ("Stale (GitHub failing)", "stale_served"),
    ("Passed through", "bypassed"),
)

#: Figures that mean something went wrong when they are not zero.
TROUBLE = ("fleet_errors", "integrity_failures", "stale_served", "too_large_to_share")

_ICONS = {"active": "🟢", "local-only": "⚪", "degraded": "🟠", "off": "⚪"}


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _n(value: Any) -> str:
    number = _int(value)
    return "n/a" if number is None else f"{number:,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _setup(state: dict[str, Any]) -> str:
    seconds = state.get("setup_seconds")
    if not isinstance(seconds, (int, float)):
        return ""
    how = {"restored": "environment restored from the cache",
           "present": "environment already on this runner",
           "built": f"environment built ({state.get('install_seconds', 0):.1f} s)",
           "preinstalled": "preinstalled github-p2p"}.get(str(state.get("environment")), "")
    return f"{seconds:.1f} s" + (f" ({how})" if how else "")


def _fleet(status: str, stats: dict[str, Any] | None, peers: list[dict[str, Any]],
           reason: str) -> str:
    if stats is None and status == "degraded":
        why = reason or "the daemon did not answer"
        return f"degraded: {why}. The job called the GitHub API directly."
    connected = _int((stats or {}).get("connected_peers")) or 0
    if status == "active":
        return f"active: {connected} bootstrap node{'s' if connected != 1 else ''} connected"
    if status == "local-only":
        return "local-only: no fleet configured, responses were cached on this runner only"
    if status == "off":
        return f"off: {reason}" if reason else "off"
    errors = sorted({str(p.get("last_error")) for p in peers if p.get("last_error")})
    why = reason or ("; ".join(errors) if errors else "no bootstrap node reachable")
    return f"degraded: {why} (local cache and direct GitHub API calls instead)"


def render(state: dict[str, Any], stats: dict[str, Any] | None,
           peers: list[dict[str, Any]] | None = None, note: str = "") -> str:
    """The Markdown for ``$GITHUB_STEP_SUMMARY``.

    ``state`` is the action's state (status, why it failed or is off, set-up timings),
    ``stats`` the daemon's ``/_p2p/stats`` (None when it never answered), ``peers`` its
    ``/_p2p/peers`` (for the reason of a degraded fleet), ``note`` how the stop went.
    """
    status = str((stats or {}).get("status") or state.get("status") or "not started")
    reason = str(state.get("failed") or state.get("reason") or "")
    icon = _ICONS.get(status, "⚪")
    lines: list[str] = []
    if stats is None:
        lines += [f"### {icon} github-p2p: {status}", "",
                  _cell(_fleet(status, None, peers or [], reason)), ""]
        if setup := _setup(state):
            lines += [f"Set-up: {setup}.", ""]
        if note:
            lines += [note, ""]
        return "\n".join(lines) + "\n"

    saved, requests = _int(stats.get("api_calls_saved")), _int(stats.get("requests"))
    headline = f"{_n(saved)} API call{'s' if saved != 1 else ''} saved" \
        if saved is not None else "statistics"
    lines += [f"### {icon} github-p2p: {headline}", "",
              "| | |", "|---|---|"]
    if saved is not None and requests is not None:
        lines.append(f"| **API calls saved** | **{saved:,}** of {requests:,} requests |")
    rate = stats.get("hit_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        lines.append(f"| Hit rate | {rate * 100:.1f} % |")
    if "api_calls_made" in stats:
        lines.append(f"| Calls sent to GitHub | {_n(stats.get('api_calls_made'))} |")
    remaining = _int(stats.get("rate_limit_remaining"))
    left = _n(remaining) if remaining is not None else "not seen (no call reached GitHub)"
    lines.append(f"| Rate limit remaining | {left} |")
    warn = "⚠️ " if status == "degraded" else ""
    lines.append(f"| Fleet | {warn}{_cell(_fleet(status, stats, peers or [], reason))} |")
    for key in TROUBLE:
        if key in stats:
            value = _int(stats[key]) or 0
            lines.append(f"| {_LABELS[key]} | {'⚠️ ' if value else ''}{_n(value)} |")
    if setup := _setup(state):
        lines.append(f"| Set-up | {setup} |")
    lines.append("")

    slices = [(label, _int(stats.get(key)) or 0) for label, key in SLICES]
    slices = [(label, value) for label, value in slices if value > 0]
    if slices and requests:
        lines += ["```mermaid", f"pie showData title Where the {requests:,} requests were answered"]
        lines += [f'    "{label}" : {value}' for label, value in slices]
        lines += ["```", ""]

    detail = [(label, stats[key]) for label, key in ROWS if key in stats]
    if detail:
        lines += ["<details><summary>All counters</summary>", "", "| counter | value |",
                  "|---|---:|"]
        lines += [f"| {label} | {_n(value)} |" for label, value in detail]
        lines += ["", "</details>", ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines) + "\n"
