"""Command-line entry point: parses arguments and dispatches to ``rjsync.commands``.

This is the only place that turns an ``RjsyncError`` into a message and an exit code.
"""

from __future__ import annotations

import os
import re
import sys

import click

from rjsync import __version__
from rjsync.errors import RjsyncError

#: Exit code of an unexpected error (a bug in rjsync), apart from 1 (an error the user can fix)
#: and 2 (changes pending): EX_SOFTWARE of sysexits.h.
INTERNAL_ERROR_EXIT = 70

_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _Group(click.Group):
    """A group whose commands report ``RjsyncError`` as one clear line and exit 1, whose usage
    errors exit 1 too (2 is reserved for "changes pending"), and which turns any other
    exception into one sentence and exit 70, with the traceback only under --debug."""

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except RjsyncError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            # exit 1, not click's 2: with --detailed-exitcode, 2 means "the plan has changes"
            exc.show()
            ctx.exit(1)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the one handler of unexpected errors
            if _debugging(ctx):
                raise
            click.echo(f"Error: {unexpected(exc)}", err=True)
            ctx.exit(INTERNAL_ERROR_EXIT)


def unexpected(exc: BaseException) -> str:
    """One sentence for an exception rjsync did not expect: what it was (credentials in URLs
    masked, control characters dropped) and how to see more."""
    text = _URL_CREDENTIALS.sub(r"\1***@", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    text = _CONTROL.sub("", text)[:300]
    return (f"rjsync failed unexpectedly ({type(exc).__name__}{': ' + text if text else ''}). This is a "
            "bug; run again with --debug (or RJSYNC_DEBUG=1) for the traceback, and report it.")


def _debugging(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or os.environ.get("RJSYNC_DEBUG", "") not in ("", "0")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rjsync")
@click.option("--debug", is_flag=True,
              help="Show the traceback of an unexpected error (also RJSYNC_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Keep Azure Automation accounts in sync with a Git repository of PowerShell runbooks.

    \b
    Runbooks live in the RealmJoin layout: <context>/<category>/<name>.ps1, e.g.
    user/security/reset-password.ps1 becomes the runbook rjgit-user_security_reset-password.
    Only runbooks named rjgit-* are ever written; every other runbook is the customer's.

    \b
    Exit codes: 0 success, 1 an error (the message says what to do), 2 changes pending
    (plan --detailed-exitcode), 70 an unexpected error (a bug: --debug shows where).
    """
    ctx.obj = {"debug": debug}


@cli.command("catalog")
@click.argument("source")
@click.option("--ref", metavar="REF", help="Branch, tag or commit to read when SOURCE is a git repository.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output format: a readable table, or the JSON contract of design.md.",
)
def catalog_cmd(source: str, ref: str | None, fmt: str) -> None:
    """List every runbook SOURCE holds, as PowerShell and the portal see it.

    SOURCE is a folder in the upstream layout, or a git repository (URL or local path);
    with --ref the repository is cloned into the cache ($RJSYNC_CACHE, default
    ~/.cache/rjsync) and read at that branch, tag or commit.

    Exits 1 when the catalog has errors (e.g. two scripts that map to one runbook name).
    """
    from rjsync.commands.catalog import run

    sys.exit(run(source, ref=ref, fmt=fmt))


# -- plan and apply --------------------------------------------------------------------------------


def _source_options(f):
    """--manifest, or --source/--ref/--target, plus the policy and Azure flags."""
    from rjsync.accounts.credentials import AUTH_KINDS, CLOUDS

    options = [
        click.option("--manifest", metavar="FILE|FOLDER", type=click.Path(),
                     help="A YAML manifest naming source, target and policy (see manifests/demo.yaml), or "
                          "a folder of them: every account in it (a fleet; _defaults.yaml holds what they share)."),
        click.option("--accounts-at-once", type=click.IntRange(1, 64), default=None, metavar="N",
                     help="With a folder of manifests: accounts planned or applied at once.  [default: 4]"),
        click.option("--source", metavar="SOURCE", help="A folder, or a git URL / local repository path."),
        click.option("--ref", metavar="REF", help="Branch, tag or commit of a git SOURCE."),
        click.option("--target", metavar="TARGET",
                     help="local:PATH (a directory account) or an automation account's ARM id."),
        click.option("--prefix", metavar="PREFIX", default=None,
                     help="Runbooks named PREFIX* are owned by the sync.  [default: rjgit-]"),
        click.option("--context", "contexts", metavar="NAME", multiple=True,
                     help="A top-level source folder holding runbooks; repeat for more.  "
                          "[default: device, group, org, user]"),
        click.option("--exclude", metavar="GLOB", multiple=True,
                     help="Never create, update or delete runbooks whose name or path matches; repeatable."),
        click.option("--runtime", metavar="NAME", default=None,
                     help="Runtime environment for the runbooks (created if missing), or 'classic' for "
                          "Windows PowerShell 5.1.  [default: RJ-PowerShell-7.4]"),
        click.option("--modules/--no-modules", "modules", default=None,
                     help="Import and upgrade the modules the runbooks require.  [default: --modules]"),
        click.option("--keep-drifted", is_flag=True, default=None,
                     help="Leave runbooks edited in the portal alone instead of overwriting them."),
        click.option("--auth", type=click.Choice(AUTH_KINDS, case_sensitive=False), default=None,
                     help="Azure identity for an ARM id target; github-oidc signs in from a GitHub Actions "
                          "job (permissions: id-token: write) with a new GitHub ID token for every Azure "
                          "token, so a long sync keeps its sign-in.  [default: default]"),
        click.option("--client-id", metavar="ID", default=None,
                     help="Client id of a user-assigned managed identity, or of the identity --auth "
                          "github-oidc signs in as (instead of AZURE_CLIENT_ID)."),
        click.option("--cloud", type=click.Choice(sorted(CLOUDS), case_sensitive=False), default=None,
                     help="Azure cloud.  [default: public]"),
        click.option("--arm-endpoint", metavar="URL", default=None, help="Resource Manager endpoint (overrides --cloud)."),
        click.option("--gallery", metavar="URL", default=None, callback=_check_gallery,
                     help="The PowerShell Gallery's v2 API modules are looked up in and imported from, or a "
                          "mirror's (Azure Artifacts, Nexus, ProGet); also the manifest's azure.gallery or "
                          "$RJSYNC_GALLERY.  [default: https://www.powershellgallery.com/api/v2]"),
        click.option("--identity", metavar="GUID", default=None, callback=_check_identity,
                     help="Principal (object) id of the user-assigned identity the runbooks run as, whose "
                          "grants the Permissions section checks; also the manifest's azure.identity.  "
                          "[default: the account's system-assigned identity]"),
        click.option("--graph-endpoint", metavar="URL", default=None, callback=_check_graph_endpoint,
                     help="Microsoft Graph endpoint the grants are read from (overrides --cloud's); also the "
                          "manifest's azure.graph_endpoint."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _check_identity(ctx, param, value):
    """--identity: a GUID (kept in lower case), as the manifest's azure.identity."""
    if value is None:
        return None
    from rjsync.accounts.base import is_guid

    if not is_guid(value.strip()):
        raise click.BadParameter("not a GUID: give the principal (object) id of the user-assigned identity, "
                                 "like 3f2b9c1e-0000-4000-8000-000000000001.")
    return value.strip().lower()


def _check_graph_endpoint(ctx, param, value):
    """--graph-endpoint: https only (a token is never sent over plain HTTP); credentials in it never shown."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() != "https" or not parts.hostname:
        raise click.BadParameter("use an https:// URL (tokens are never sent over plain HTTP).")
    return value


def _check_gallery(ctx, param, value):
    """--gallery: an https URL (credentials in it never shown in the message)."""
    if value is None:
        return None
    from rjsync.accounts.gallery import GalleryError, check_gallery_url

    try:
        return check_gallery_url(value)
    except GalleryError as err:
        raise click.BadParameter(err.message) from None


def _settings(manifest, accounts_at_once, source, ref, target, prefix, contexts, exclude, runtime, modules,
              keep_drifted, auth, client_id, cloud, arm_endpoint, gallery, identity=None, graph_endpoint=None,
              max_deletions=None, concurrency=None, require_permissions=None):
    """SyncSettings, or a Fleet when --manifest names a folder."""
    from rjsync.settings import settings_from

    policy = {"prefix": prefix, "contexts": tuple(contexts) or None, "exclude": tuple(exclude) or None,
              "runtime": runtime, "modules": modules, "keep_drifted": keep_drifted, "max_deletions": max_deletions}
    azure = {"auth": auth.lower() if auth else None, "client_id": client_id,
             "cloud": cloud.lower() if cloud else None, "arm_endpoint": arm_endpoint, "gallery": gallery,
             "permissions_identity": identity, "graph_endpoint": graph_endpoint}
    if manifest and os.path.isdir(manifest):
        if identity:
            raise click.UsageError("--identity names one account's identity: for a folder of manifests, give "
                                   "each account's in its manifest (azure.identity).")
        from rjsync.fleet import fleet_from

        return fleet_from(manifest, source=source, ref=ref, target=target, policy=policy, azure=azure,
                          concurrency=concurrency, accounts_at_once=accounts_at_once,
                          require_permissions=require_permissions)
    if accounts_at_once is not None:
        raise click.UsageError("--accounts-at-once is for a folder of manifests (--manifest FOLDER).")
    return settings_from(manifest=manifest, source=source, ref=ref, target=target, policy=policy, azure=azure,
                         concurrency=concurrency, require_permissions=require_permissions)


def _require_permissions(f):
    return click.option(
        "--require-permissions", is_flag=True, default=None,
        help="A required grant the runbooks' identity lacks is an error (plan exits 1, apply writes "
             "nothing), and so are grants that cannot be read; also the manifest's permissions.require.")(f)


@cli.command("plan")
@_source_options
@click.option("--max-deletions", type=click.IntRange(min=0), default=None, metavar="N",
              help="Deletions allowed before the plan warns and apply refuses them.  [default: 10]")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for terminals and logs, json (the contract), markdown for PRs.")
@click.option("--out", metavar="PLANFILE", type=click.Path(dir_okay=False),
              help="Also save the plan; 'rjsync apply PLANFILE' applies exactly it, if nothing changed since.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes, 0 when it has none.")
@_require_permissions
def plan_cmd(fmt, out, detailed_exitcode, max_deletions, require_permissions, **options) -> None:
    """Show what a sync would change in an account, without changing anything.

    \b
    Examples:
      rjsync plan --manifest manifests/demo.yaml
      rjsync plan --source https://github.com/realmjoin/realmjoin-runbooks.git --ref master \\
                  --target /subscriptions/.../automationAccounts/aa-realmjoin --format markdown

    With --manifest FOLDER, plans every account of the folder (a few at once, each on its own:
    one failing does not stop the others) and ends with one summary table.

    Every plan ends with what the runbooks need from the identity they run as and what it
    lacks (Permissions); it changes the exit code only with --require-permissions.

    Exit codes: 0 success, 1 error (including a catalog with errors, or a missing required grant
    with --require-permissions), 2 changes pending (only with --detailed-exitcode). For a folder,
    the worst of its accounts' (1, then 2, then 0).
    """
    from rjsync.commands.fleet import run_fleet_plan
    from rjsync.commands.sync import run_plan
    from rjsync.fleet import Fleet

    settings = _settings(max_deletions=max_deletions, require_permissions=require_permissions, **options)
    if isinstance(settings, Fleet):
        if out:
            raise click.UsageError("--out saves one account's plan; give --manifest one FILE of the folder.")
        sys.exit(run_fleet_plan(settings, fmt=fmt, detailed_exitcode=detailed_exitcode))
    sys.exit(run_plan(settings, fmt=fmt, out=out, detailed_exitcode=detailed_exitcode))


@cli.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@_source_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (needed when stdin is not a terminal).")
@click.option("--max-deletions", type=click.IntRange(min=0), default=None, metavar="N",
              help="Allow up to N deletions in this run.  [default: the policy's limit, 10]")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Requests to the account in flight at once; 4 x N runbook writes proceed together "
                   "(a write mostly waits for the service). Resource Manager's request budgets and "
                   "the 5 module imports per 30 s are kept whatever N is.  [default: 8]")
@_require_permissions
def apply_cmd(planfile, auto_approve, max_deletions, concurrency, require_permissions, **options) -> None:
    """Sync an account with its source: plan, show, confirm, apply.

    With PLANFILE (from 'rjsync plan --out'), apply exactly that plan; it is refused as stale
    when the source or the account changed since, or when planning again does not give exactly
    it. A plan file never raises the deletion limit over the default (10) by itself: pass
    --max-deletions N to apply as well. Modules are imported first, then runbooks
    are written, deletions come last. A failed change does not stop the others; run again to
    finish an interrupted or partly failed apply.

    With --manifest FOLDER (needs --auto-approve), applies every account of the folder, a few at
    once, each on its own; progress lines start with the account's name, and one summary table
    ends the output.

    With --require-permissions, a required grant the runbooks' identity lacks refuses the apply
    before anything is written.

    Exit codes: 0 everything applied (or nothing to do), 1 an error or a change not done (for a
    folder: in any account).
    """
    from rjsync.commands.fleet import run_fleet_apply
    from rjsync.commands.sync import run_apply
    from rjsync.fleet import Fleet
    from rjsync.sync import prepare, prepare_saved

    if planfile:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items()
                 if v not in (None, (), False) and k not in ("auth", "client_id", "cloud", "arm_endpoint", "gallery",
                                                             "identity", "graph_endpoint")]
        if given:
            raise click.UsageError(f"A saved plan carries its source, target and policy; drop {', '.join(given)}.")
        from rjsync.settings import DEFAULT_CONCURRENCY, AzureOptions

        azure = AzureOptions(**{k: v for k, v in (("auth", (options["auth"] or "default").lower()),
                                                  ("client_id", options["client_id"]),
                                                  ("cloud", (options["cloud"] or "public").lower()),
                                                  ("arm_endpoint", options["arm_endpoint"]),
                                                  ("gallery", options["gallery"]),
                                                  ("permissions_identity", options["identity"]),
                                                  ("graph_endpoint", options["graph_endpoint"]))})
        prepared = prepare_saved(planfile, azure=azure, concurrency=concurrency or DEFAULT_CONCURRENCY,
                                 require_permissions=bool(require_permissions))
    else:
        settings = _settings(max_deletions=None, concurrency=concurrency, require_permissions=require_permissions,
                             **options)
        if isinstance(settings, Fleet):
            sys.exit(run_fleet_apply(settings, auto_approve=auto_approve, max_deletions=max_deletions))
        prepared = prepare(settings)
    sys.exit(run_apply(prepared, auto_approve=auto_approve, max_deletions=max_deletions))


# -- runbook jobs ----------------------------------------------------------------------------------


def _job_options(with_source: bool):
    """--manifest, or --target (and --source/--ref for a start), the prefix and the Azure flags."""
    from rjsync.accounts.credentials import AUTH_KINDS, CLOUDS

    options = [
        click.option("--manifest", metavar="FILE", type=click.Path(dir_okay=False),
                     help="The account's manifest (source, target, policy)."),
        *([click.option("--source", metavar="SOURCE", help="The source the account is synced from (a folder, or "
                                                             "a git URL / local repository path)."),
           click.option("--ref", metavar="REF", help="Branch, tag or commit of a git SOURCE.")] if with_source else []),
        click.option("--target", metavar="TARGET", help="local:PATH (a directory account) or an automation "
                                                        "account's ARM id."),
        click.option("--prefix", metavar="PREFIX", default=None,
                     help="Runbooks named PREFIX* are the synced ones.  [default: rjgit-]"),
        click.option("--auth", type=click.Choice(AUTH_KINDS, case_sensitive=False), default=None,
                     help="Azure identity for an ARM id target.  [default: default]"),
        click.option("--client-id", metavar="ID", default=None, help="Client id of the identity to sign in as."),
        click.option("--cloud", type=click.Choice(sorted(CLOUDS), case_sensitive=False), default=None,
                     help="Azure cloud.  [default: public]"),
        click.option("--arm-endpoint", metavar="URL", default=None, help="Resource Manager endpoint (overrides --cloud)."),
    ]

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _job_settings(manifest, target, prefix, auth, client_id, cloud, arm_endpoint, source=None, ref=None,
                  need_source=True):
    from rjsync.settings import SourceSpec, SyncSettings, override, settings_from

    azure = {"auth": auth.lower() if auth else None, "client_id": client_id,
             "cloud": cloud.lower() if cloud else None, "arm_endpoint": arm_endpoint}
    if manifest and os.path.isdir(manifest):
        raise click.UsageError("--manifest names one account's manifest FILE here, not a folder.")
    if need_source or manifest:
        return settings_from(manifest=manifest, source=source, ref=ref, target=target,
                             policy={"prefix": prefix}, azure=azure)
    if not target:
        raise click.UsageError("Missing --target: give --manifest FILE or --target TARGET.")
    return override(SyncSettings(SourceSpec(""), target), policy={"prefix": prefix}, azure=azure)


@cli.command("run")
@click.argument("name")
@_job_options(with_source=True)
@click.option("--param", "params", metavar="NAME=VALUE", multiple=True,
              help="A parameter; VALUE is read as JSON when it is JSON (true, 3, [\"a\"], \"3\"), else as text. "
                   "Repeatable.")
@click.option("--customization", metavar="FILE", type=click.Path(dir_okay=False),
              help="The tenant's runbook customization JSON (the portal's): its defaults, hidden parameters and "
                   "options apply.")
@click.option("--wait", is_flag=True, help="Wait for the job's end, print its streams, exit 1 if it failed.")
def run_cmd(name, params, customization, wait, **options) -> None:
    """Start a job of the synced runbook NAME, its parameters checked first.

    \b
    Examples:
      rjsync run rjgit-user_general_set-usage-location --manifest manifests/prod.yaml \\
                 --param UserName=ada@contoso.com --param CountryCode=DE --param Overwrite=true --wait

    Before anything starts: the account holds NAME as synced (its receipt), its content is still
    what was synced, and the parameters are those of the source at the synced commit, with
    PowerShell's conversions (every problem listed). Prints the job id; with --wait, the streams.

    Exit codes: 0 started (with --wait: completed), 1 refused, or the job failed.
    """
    from rjsync.commands.jobs import parse_params, read_customization, run_job

    values = parse_params(params)
    settings = _job_settings(**options)
    sys.exit(run_job(settings, name, values, wait=wait, customization=read_customization(customization)))


@cli.command("job")
@click.argument("job_id", metavar="JOBID")
@_job_options(with_source=False)
@click.option("--streams", is_flag=True, help="Print every stream (Output, Verbose, Warning, Error), not only Output.")
def job_cmd(job_id, streams, **options) -> None:
    """Show job JOBID of an account: its status, its output (or streams) and its exception.

    Statuses are RealmJoin's: New, Queued, Running, Completed, Failed (Azure's own in brackets).

    Exit codes: 0 the job completed or has not ended, 1 it failed or is unknown.
    """
    from rjsync.commands.jobs import show_job

    sys.exit(show_job(_job_settings(need_source=False, **options), job_id, streams=streams))


# -- github ----------------------------------------------------------------------------------------


@cli.group("github")
def github_group() -> None:
    """Work with GitHub from a workflow (pull-request comments)."""


@github_group.command("comment")
@click.argument("body", metavar="[FILE]", default="-", required=False)
@click.option("--marker", metavar="MARKER", default=None,
              help="Hidden first line that identifies the comment; one comment per marker.  "
                   "[default: <!-- rjsync-plan -->]")
@click.option("--repo", metavar="OWNER/NAME", default=None, help="The repository.  [default: $GITHUB_REPOSITORY]")
@click.option("--pr", type=click.IntRange(min=1), default=None, metavar="N",
              help="The pull request.  [default: the one in $GITHUB_EVENT_PATH]")
@click.option("--api-url", metavar="URL", default=None,
              help="GitHub's REST API.  [default: $GITHUB_API_URL or https://api.github.com]")
def github_comment_cmd(body, marker, repo, pr, api_url) -> None:
    """Post FILE (markdown; '-' or nothing: standard input) on a pull request, editing the
    comment posted before with the same marker instead of adding another.

    \b
    Example (in a pull_request workflow, with permissions: pull-requests: write):
      rjsync plan --manifest manifests/prod.yaml --format markdown > plan.md
      rjsync github comment plan.md        # env: GITHUB_TOKEN: ${{ github.token }}

    The token is read from $GITHUB_TOKEN (or $GH_TOKEN) and never printed. Bodies longer
    than GitHub's 65,536 characters are cut with a note.
    """
    from rjsync.commands.github import run

    sys.exit(run(body, marker=marker, repo=repo, pr=pr, api_url=api_url))


# -- serve -----------------------------------------------------------------------------------------


@cli.group("permissions")
def permissions_group() -> None:
    """Give the identity the runbooks run as what their permissions files ask for."""


@permissions_group.command("grant")
@_source_options
@click.option("--include-optional", is_flag=True, help="Also grant the optional permissions (each serves a named "
                                                       "feature of a runbook).")
@click.option("--auto-approve", is_flag=True, help="Grant without asking (needed when stdin is not a terminal).")
def permissions_grant_cmd(include_optional, auto_approve, **options) -> None:
    """Grant the identity of an account what the runbooks it will hold need and it lacks.

    Plans a sync (nothing is written to the account), lists the missing app roles (Microsoft
    Graph, Exchange Online, Defender, ...) and Entra directory roles from the plan's permissions
    section, asks, then grants them one by one. A grant is never removed; one already there
    counts as done, so running it again is harmless.

    --auth and --client-id name the identity that reads the account and grants: it needs
    AppRoleAssignment.ReadWrite.All, Application.Read.All and RoleManagement.ReadWrite.Directory
    in Microsoft Graph (the sync's own identity need not have them); they replace the manifest's
    azure.auth. On a directory account (local:PATH) the grants are added to PATH/identity.json.

    Exit codes: 0 everything granted (or nothing to grant), 1 an error or a grant that failed.
    """
    from rjsync.commands.permissions import run_grant
    from rjsync.fleet import Fleet

    options["auth"] = options["auth"] or "default"
    settings = _settings(**options)
    if isinstance(settings, Fleet):
        raise click.UsageError("permissions grant works on one account: give --manifest a file, not a folder.")
    sys.exit(run_grant(settings, include_optional=include_optional, auto_approve=auto_approve))


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Service config (YAML): manifests, database, users, tokens.  [default: $RJSYNC_SERVICE_CONFIG]")
@click.option("--manifests", metavar="DIR", type=click.Path(file_okay=False),
              help="The accounts: a folder of manifests, named after them.  [default: $RJSYNC_MANIFESTS]")
@click.option("--hash-secret", is_flag=True,
              help="Read a password or token (hidden) and print the hash to put in the config; then exit.")
def serve_cmd(host, port, config_file, manifests, hash_secret) -> None:
    """Serve the sync API behind the "Sync runbooks with upstream" button.

    \b
    POST /api/sync/start|run|plan with {"account": "<manifest name>"}; job status and streams
    under /api/sync/jobs/{jobID}/...; runbook jobs under /runbook/... and /api/external/runbook/...
    (README, "Runbook jobs"); the OpenAPI document at /openapi.json. Every request needs
    Basic or Bearer credentials from the config (stored as hashes). See README, "Sync service".
    """
    if hash_secret:
        from rjsync.service.auth import hash_secret as make_hash

        click.echo(make_hash(click.prompt("Secret", hide_input=True, confirmation_prompt=True, err=True)))
        return
    import uvicorn

    from rjsync.service import create_app, load_config

    app = create_app(load_config(config_file, manifests=manifests))
    app.state.runbook_jobs.worker.warm_up()  # the job worker's imports, before the first start waits for them
    uvicorn.run(app, host=host, port=port, log_level="info")


def main() -> None:
    cli(prog_name="rjsync")
