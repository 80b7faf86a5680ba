"""Manifests: the demo, defaults, relative paths, and the exact message of every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rjsync.engine.policy import Policy
from rjsync.errors import ManifestError
from rjsync.manifest import load_manifest
from rjsync.settings import AzureOptions, SourceSpec, SyncSettings

REPO = Path(__file__).resolve().parent.parent
ARM_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
          "Microsoft.Automation/automationAccounts/acme-automation")
MINIMAL = "source:\n  path: runbooks\ntarget: local:account\n"


@pytest.fixture
def write(tmp_path):
    """Write a manifest acme.yaml into tmp_path/manifests and return its path."""

    def write(text: str, name: str = "acme.yaml") -> Path:
        path = tmp_path / "manifests" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def error(path: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return str(caught.value)


# --------------------------------------------------------------------------- what loads


def test_manifest_demo_loads_and_points_at_the_repository_runbooks():
    settings = load_manifest(REPO / "manifests" / "demo.yaml")
    assert settings.source == SourceSpec(location=str(REPO / "runbooks"), ref=None)
    assert os.path.isdir(settings.source.location)
    assert settings.target == f"local:{REPO / '.rjsync-demo' / 'account'}"
    assert settings.policy == Policy(runtime="RJ-PowerShell-7.4", max_deletions=10)
    assert settings.name == "demo"


def test_manifest_defaults_come_from_the_dataclasses(write):
    path = write(MINIMAL)
    folder = path.parent
    assert load_manifest(path) == SyncSettings(
        source=SourceSpec(location=str(folder / "runbooks")),
        target=f"local:{folder / 'account'}",
        policy=Policy(),
        azure=AzureOptions(),
        concurrency=8,
        name="acme",
        manifest=str(path),
    )


def test_manifest_every_key_is_read(write):
    path = write(f"""\
source:
  url: https://github.com/realmjoin/realmjoin-runbooks.git
  ref: v1.2
target: {ARM_ID}
policy:
  prefix: acme-
  contexts: [user, org]
  exclude: ["acme-org_internal_*"]
  runtime: classic
  max_deletions: 0
  modules: false
  keep_drifted: true
  default_packages: {{Az: 11.6.0, Azure CLI: '2.64.0'}}
azure:
  auth: Managed-Identity
  client_id: 11111111-1111-1111-1111-111111111111
  cloud: usgovernment
  arm_endpoint: https://management.example.test/
  gallery: https://pkgs.example.test/_packaging/psgallery/nuget/v2/
  identity: 3F2B9C1E-0000-4000-8000-000000000001
  graph_endpoint: https://graph.example.test/
concurrency: 64
""")
    settings = load_manifest(path)
    assert settings.source == SourceSpec(
        "https://github.com/realmjoin/realmjoin-runbooks.git", "v1.2")
    assert settings.target == ARM_ID
    assert settings.policy == Policy("acme-", ("user", "org"), ("acme-org_internal_*",), "classic",
                                     0, False, True, (("Az", "11.6.0"), ("Azure CLI", "2.64.0")))
    assert settings.azure == AzureOptions(
        "managed-identity", "11111111-1111-1111-1111-111111111111", "usgovernment",
        "https://management.example.test/", "https://pkgs.example.test/_packaging/psgallery/nuget/v2",
        permissions_identity="3f2b9c1e-0000-4000-8000-000000000001", graph_endpoint="https://graph.example.test/")
    assert settings.concurrency == 64


def test_manifest_relative_paths_resolve_against_the_manifest_folder(write, tmp_path, monkeypatch):
    path = write("source: {path: ../runbooks}\ntarget: local:../accounts/acme\n")
    monkeypatch.chdir(tmp_path / "manifests")
    settings = load_manifest("acme.yaml")  # a relative manifest path, too
    assert settings.source.location == str(tmp_path / "runbooks")
    assert settings.target == f"local:{tmp_path / 'accounts' / 'acme'}"
    assert settings.manifest == "acme.yaml"
    assert path.exists()


def test_manifest_absolute_paths_and_urls_are_kept(write, tmp_path):
    path = write(f"source: {{path: {tmp_path / 'src'}}}\ntarget: local:{tmp_path / 'acct'}\n")
    settings = load_manifest(path)
    assert settings.source.location == str(tmp_path / "src")
    assert settings.target == f"local:{tmp_path / 'acct'}"
    url = "git@github.com:realmjoin/realmjoin-runbooks.git"
    settings = load_manifest(write(f"source: {{url: '{url}'}}\ntarget: local:a\n"))
    assert settings.source.location == url


def test_manifest_int_ref_is_accepted_as_the_text_written(write):
    manifest = "source: {{url: https://h/r.git, ref: {}}}\ntarget: local:a\n"
    assert load_manifest(write(manifest.format("1234567"))).source.ref == "1234567"
    # YAML 1.1 reads 0123456 as an octal number; the ref is what was written
    assert load_manifest(write(manifest.format("0123456"))).source.ref == "0123456"


def test_manifest_empty_sections_keep_the_defaults(write):
    path = write(MINIMAL + "policy:\n  # max_deletions: 3\nazure:\n")
    settings = load_manifest(path)
    assert (settings.policy, settings.azure) == (Policy(), AzureOptions())


# --------------------------------------------------------------------------- refusals


def test_manifest_unknown_key_suggests_the_closest(write):
    path = write(MINIMAL + "polcy:\n  prefix: xy-\n")
    assert error(path) == (
        f"{path}:4: unknown key 'polcy' (known keys: source, target, policy, azure, permissions, concurrency); "
        "did you mean 'policy'?"
    )


def test_manifest_unknown_key_without_a_close_one(write):
    path = write(MINIMAL + "policy:\n  prefix: xy-\n  color: blue\n")
    assert error(path) == (
        f"{path}:6: policy: unknown key 'color' (known keys: prefix, contexts, exclude, runtime, "
        "max_deletions, modules, keep_drifted, default_packages)."
    )


def test_manifest_wrong_type_names_line_and_key(write):
    path = write(MINIMAL + "policy:\n  prefix: xy-\n  max_deletions: ten\n")
    assert error(path) == (
        f"{path}:6: policy.max_deletions: expected a whole number >= 0, got 'ten'.")


def test_manifest_bool_is_not_a_number_for_max_deletions(write):
    path = write(MINIMAL + "policy:\n  max_deletions: true\n")
    assert error(path) == (
        f"{path}:5: policy.max_deletions: expected a whole number >= 0, got true (a boolean)."
    )


def test_manifest_concurrency_out_of_range(write):
    path = write(MINIMAL + "concurrency: 65\n")
    assert error(path) == f"{path}:4: concurrency: expected a whole number from 1 to 64, got 65."


def test_manifest_missing_source(write):
    path = write("target: local:account\n")
    assert error(path) == (
        f"{path}: 'source' is missing: add source: {{url: https://host/org/runbooks.git}} for a "
        "git repository, or source: {path: ./runbooks} for a folder."
    )


def test_manifest_missing_target(write):
    path = write("source:\n  path: runbooks\n")
    assert error(path) == (
        f"{path}: 'target' is missing: add target: local:PATH for a directory account, or target: "
        "/subscriptions/<subscription-id>/resourceGroups/<group>/providers/Microsoft.Automation/"
        "automationAccounts/<account> for an automation account."
    )


def test_manifest_url_and_path_both_given(write):
    path = write("target: local:a\nsource:\n  url: https://h/r.git\n  path: runbooks\n")
    assert error(path) == (
        f"{path}:3: source: give either url (a git repository) or path (a folder or local git "
        "repository), not both."
    )


def test_manifest_neither_url_nor_path(write):
    path = write("target: local:a\nsource:\n  ref: main\n")
    assert error(path) == (
        f"{path}:3: source: give either url (a git repository) or path (a folder or local git "
        "repository), one is needed."
    )


def test_manifest_duplicate_key(write):
    path = write(MINIMAL + "policy:\n  prefix: ab-\n  modules: true\n  prefix: bc-\n")
    assert error(path) == f"{path}:7: policy: duplicate key 'prefix' (first given on line 5)."


def test_manifest_yaml_syntax_error(write):
    path = write(MINIMAL + "policy:\n  prefix: a-\n   modules: true\n")
    assert error(path) == f"{path}:6: not valid YAML: mapping values are not allowed here."
    path = write(MINIMAL + "---\nconcurrency: 2\n")
    assert error(path) == (
        f"{path}:4: not valid YAML: expected a single document in the stream, but found another "
        "document."
    )


def test_manifest_empty_file(write):
    path = write("# nothing yet\n")
    assert error(path) == f"{path}: the manifest is empty; it needs at least 'source' and 'target'."


def test_manifest_top_level_not_a_mapping(write):
    path = write("- source\n- target\n")
    assert error(path) == (
        f"{path}:1: expected a mapping with the keys source, target, policy, azure, permissions, concurrency, "
        "got a list."
    )


def test_manifest_missing_file_or_folder(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error(missing) == f"The manifest '{missing}' does not exist."
    assert error(tmp_path) == f"The manifest '{tmp_path}' is a folder; name a .yaml file in it."


def test_manifest_bad_auth_kind(write):
    path = write(MINIMAL + "azure:\n  auth: managed-identiy\n")
    assert error(path) == (
        f"{path}:5: azure.auth: unknown value 'managed-identiy' (choose one of default, "
        "managed-identity, workload-identity, cli, client-secret, certificate, github-oidc); "
        "did you mean 'managed-identity'?"
    )


def test_manifest_default_packages_empty_means_none(write):
    assert load_manifest(write(MINIMAL + "policy: {default_packages: {}}\n")).policy.default_packages == ()


def test_manifest_float_ref_must_be_quoted(write):
    path = write("source:\n  url: https://h/r.git\n  ref: 1.10\ntarget: local:a\n")
    assert error(path) == (
        f"{path}:3: source.ref: expected a branch, tag or commit, got 1.10 (a number); "
        "quote it: ref: '1.10'."
    )


def test_manifest_bad_values_beyond_types(write):
    cases = {
        "policy: {prefix: 1x-}": "policy.prefix: '1x-' is not allowed: use letters, digits, '_' "
                                 "and '-', starting with a letter.",
        "policy: {contexts: []}": "policy.contexts: must list at least one name.",
        "policy: {contexts: [user, ../x]}": "policy.contexts[1]: '../x' is not a folder name: give "
                                            "a top-level folder of the source, like user.",
        "policy: {exclude: ['']}": "policy.exclude[0]: must not be empty.",
        "policy: {exclude: rjgit-*}": "policy.exclude: expected a list, got 'rjgit-*'.",
        "policy: {runtime: 7.4}": "policy.runtime: expected text, got 7.4 (a number).",
        "azure: {cloud: mars}": "azure.cloud: unknown value 'mars' (choose one of public, china, "
                                "usgovernment).",
        "azure: {arm_endpoint: 'http://x'}": "azure.arm_endpoint: 'http://x' is not allowed: "
                                             "use an https:// URL (tokens are never sent over "
                                             "plain HTTP).",
        "azure: {identity: aa-realmjoin}": "azure.identity: 'aa-realmjoin' is not a GUID: give the principal "
                                           "(object) id of the user-assigned identity, like "
                                           "3f2b9c1e-0000-4000-8000-000000000001.",
        "azure: {graph_endpoint: 'http://x'}": "azure.graph_endpoint: 'http://x' is not allowed: "
                                               "use an https:// URL (tokens are never sent over "
                                               "plain HTTP).",
        "policy: {default_packages: [Az]}": "policy.default_packages: expected a mapping of package "
                                            "name to version, e.g. {Az: 12.3.0}, got a list.",
        "policy: {default_packages: {Az: 2.64}}": "policy.default_packages.Az: expected a version as "
                                                  "text, got 2.64 (a number); quote it: '2.64'.",
        "policy: {default_packages: {Az: 12.3.0, az: 11.0.0}}": "policy.default_packages: 'az' is given "
                                                                "twice (package names ignore case).",
        "policy: {default_packages: {Az: ''}}": "policy.default_packages.Az: must not be empty.",
        "azure: {gallery: 'http://user:secret@mirror.example/api/v2'}": (
            "azure.gallery: 'http://***@mirror.example/api/v2' is not a gallery URL: give the https:// "
            "URL of the PowerShell Gallery's v2 API (https://www.powershellgallery.com/api/v2) or of a "
            "mirror of it, without a query."),
        "azure: {gallery: 'https://mirror.example/api/v2?x=1'}": (
            "azure.gallery: 'https://mirror.example/api/v2?x=1' is not a gallery URL: give the https:// "
            "URL of the PowerShell Gallery's v2 API (https://www.powershellgallery.com/api/v2) or of a "
            "mirror of it, without a query."),
    }
    for line, message in cases.items():
        path = write(MINIMAL + line + "\n")
        assert error(path) == f"{path}:4: {message}"


def test_manifest_bad_target(write):
    path = write("source: {path: r}\ntarget: acme\n")
    assert error(path).startswith(
        f"{path}:2: target: expected local:PATH for a directory account or an automation "
        "account's ARM id (/subscriptions/"
    )
    path = write("source: {path: r}\ntarget: /subscriptions/not-a-guid/resourceGroups/rg/providers/"
                 "Microsoft.Automation/automationAccounts/acme-automation\n")
    assert error(path).startswith(
        f"{path}:2: target: '/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft."
        "Automation/automationAccounts/acme-automation' is not an automation account's ARM id: "
        "the subscription id 'not-a-guid' is not a GUID."
    )
    path = write("source: {path: r}\ntarget: 'local:'\n")
    assert error(path) == (
        f"{path}:2: target: 'local:' names no folder; use local:PATH, e.g. local:./account.")


def test_manifest_unsafe_url_is_refused_with_its_line(write):
    path = write("target: local:a\nsource:\n  url: 'ext::sh -c touch% /tmp/pwned'\n")
    assert error(path).startswith(
        f"{path}:3: source.url: refusing source 'ext::sh -c touch% /tmp/pwned': transport-helper")


def test_manifest_control_character_is_not_yaml(write):
    path = write(MINIMAL + "policy: {prefix: a\x07}\n")
    assert error(path) == (
        f"{path}:4: not valid YAML: special characters are not allowed (character #x0007)."
    )


# --------------------------------------------------------------------------- folder defaults

DEFAULTS = """\
source:
  url: https://example.invalid/org/runbooks.git
  ref: main
policy:
  max_deletions: 3
  exclude: ['rjgit-org_*']
azure: {auth: workload-identity}
concurrency: 4
"""


def test_manifest_takes_the_folder_defaults_and_overrides_them_key_by_key(write):
    write(DEFAULTS, "_defaults.yaml")
    path = write("target: local:account\npolicy:\n  exclude: ['rjgit-user_*']\n  keep_drifted: true\n"
                 "concurrency: 2\n")
    settings = load_manifest(path)
    assert settings.source == SourceSpec("https://example.invalid/org/runbooks.git", "main")
    # mappings merge; a list or a number replaces
    assert settings.policy == Policy(max_deletions=3, exclude=("rjgit-user_*",), keep_drifted=True)
    assert settings.azure == AzureOptions(auth="workload-identity")
    assert settings.concurrency == 2
    assert settings.name == "acme"


def test_manifest_own_repository_takes_nothing_from_the_defaults_source(write):
    write(DEFAULTS, "_defaults.yaml")
    folder = write("source: {path: runbooks}\ntarget: local:a\n").parent
    assert load_manifest(folder / "acme.yaml").source == SourceSpec(str(folder / "runbooks"), None)
    path = write("source: {ref: v2}\ntarget: local:a\n")  # only a ref: the defaults' repository
    assert load_manifest(path).source == SourceSpec("https://example.invalid/org/runbooks.git", "v2")


def test_manifest_empty_section_keeps_the_folder_defaults(write):
    write(DEFAULTS, "_defaults.yaml")
    path = write("target: local:a\npolicy:\n  # nothing of its own\n")
    assert load_manifest(path).policy == Policy(max_deletions=3, exclude=("rjgit-org_*",))


def test_manifest_defaults_paths_are_relative_to_the_defaults_file(tmp_path, write):
    write("source: {path: ../runbooks}\n", "_defaults.yml")
    path = write("target: local:../accounts/acme\n")
    settings = load_manifest(path)
    assert settings.source.location == str(tmp_path / "runbooks")
    assert settings.target == f"local:{tmp_path / 'accounts' / 'acme'}"


def test_manifest_error_in_the_defaults_names_the_defaults_file_and_line(write):
    defaults = write("source:\n  path: r\npolicy:\n  runtime: classic\n  prefx: a-\n", "_defaults.yaml")
    path = write("target: local:a\n")
    assert error(path) == (
        f"{defaults}:5: policy: unknown key 'prefx' (known keys: prefix, contexts, exclude, runtime, "
        "max_deletions, modules, keep_drifted, default_packages); did you mean 'prefix'?")
    # checked on its own, so a value every manifest overrides is still checked
    write("concurrency: 0\n", "_defaults.yaml")
    path = write(MINIMAL + "concurrency: 2\n")
    assert error(path) == f"{defaults}:1: concurrency: expected a whole number from 1 to 64, got 0."


def test_manifest_error_in_a_merged_manifest_names_the_manifest(write):
    write(DEFAULTS, "_defaults.yaml")
    path = write("target: local:a\npolicy:\n  max_deletions: -1\n")
    assert error(path) == f"{path}:3: policy.max_deletions: expected a whole number >= 0, got -1."
    path = write("target: local:a\npolicy:\n  modules: true\n  modules: false\n")
    assert error(path) == f"{path}:4: policy: duplicate key 'modules' (first given on line 3)."


def test_manifest_missing_target_says_where_it_could_be(write):
    defaults = write(DEFAULTS, "_defaults.yaml")
    path = write("policy: {modules: false}\n")
    assert error(path).startswith(f"{path}: 'target' is missing (here or in {defaults}): add target: local:PATH")


def test_manifest_two_defaults_files_are_an_error(write):
    first = write("concurrency: 2\n", "_defaults.yaml")
    second = write("concurrency: 3\n", "_defaults.yml")
    assert error(write(MINIMAL)) == f"Both {first} and {second} exist; keep one defaults file."


def test_manifest_defaults_file_alone_is_read_as_a_manifest(write):
    path = write(MINIMAL, "_defaults.yaml")
    assert load_manifest(path).name == "_defaults"
    assert load_manifest(write(MINIMAL), defaults=None).policy == Policy()


def test_manifest_empty_defaults_file_changes_nothing(write):
    write("# shared settings go here\n", "_defaults.yaml")
    assert load_manifest(write(MINIMAL)).policy == Policy()
