#!/usr/bin/env python3
"""Validate Kubernetes manifests offline.

    python3 scripts/validate_manifests.py [--crds DIR] [--require-docs] PATH...
    helm template ... | python3 scripts/validate_manifests.py --stdin

PATH is a YAML file or a directory (recursed for *.yaml / *.yml; kustomization.yaml,
Chart.yaml, values*.yaml, *.hbs and the templates/ folder of a Helm chart are skipped).
Every document (``kind: List`` is expanded into its items) is checked:

* ``agent-operator.dev/*`` objects against the openAPIV3Schema of the matching
  version of the CRDs found in ``--crds`` (default: <repo>/crds/yaml), and objects of
  the third-party CRDs kept in <repo>/scripts/schemas (KEDA's ScaledObject), translated
  to JSON Schema (``nullable``, ``x-kubernetes-int-or-string``,
  ``x-kubernetes-preserve-unknown-fields``); unknown fields are errors, as with
  ``kubectl apply --validate=strict``; ``metadata`` is only required to have a name.
* everything else (CustomResourceDefinitions included) against the Kubernetes
  JSON schemas shipped by the ``kubernetes-validate`` package, strict mode
  (unknown fields are errors), Kubernetes version ``--kubernetes-version``
  (default 1.34.0).

One line per document: ``OK  path#index kind/name`` or ``FAIL path#index kind/name: reason``
(``SKIP ...`` for kinds of a ``--skip-unknown-group`` group that have no schema).
Exit status: 0 all OK, 1 any FAIL, 2 usage error.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator

try:
    import jsonschema
    import yaml
    from packaging.version import Version
    from referencing import Registry, Resource
    from kubernetes_validate import utils as kv_utils
except ImportError as exc:  # pragma: no cover - environment problem
    print(
        f"validate_manifests: missing python package ({exc}); run scripts/install-tools.sh",
        file=sys.stderr,
    )
    sys.exit(2)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRDS = REPO_ROOT / "crds" / "yaml"
# CRDs of other projects the operator writes objects of (any group); see each file's header.
THIRD_PARTY_CRDS = REPO_ROOT / "scripts" / "schemas"
DEFAULT_K8S_VERSION = "1.34.0"
CRD_GROUP = "agent-operator.dev"


class UsageError(Exception):
    pass


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader close to what the API server's YAML decoder does.

    * timestamps stay strings (``2024-01-01`` is a string to Kubernetes),
    * duplicate mapping keys are an error (kubectl rejects them too),
    * the ``=`` value tag is read as a string.
    """


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_value(loader: _Loader, node: yaml.Node) -> str:
    return str(node.value)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:value", _construct_value)


def load_documents(text: str) -> list[Any]:
    """All non-empty documents of a YAML stream (raises yaml.YAMLError)."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


# ----------------------------------------------------------------- file selection


def _in_chart_templates(path: Path) -> bool:
    for parent in path.parents:
        if parent.name == "templates" and (parent.parent / "Chart.yaml").exists():
            return True
    return False


def skip_reason(path: Path) -> str | None:
    name = path.name
    if name.endswith(".hbs"):
        return "handlebars template"
    if name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        return "kustomization file"
    if name in ("Chart.yaml", "Chart.lock"):
        return "Helm chart metadata"
    if name.startswith("values") and name.endswith((".yaml", ".yml")):
        return "Helm values file"
    if _in_chart_templates(path):
        return "Helm chart template"
    return None


def collect_files(paths: list[str]) -> Iterator[tuple[Path, str | None, bool]]:
    """Yields (file, skip reason or None, explicitly named)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fname in sorted(filenames):
                    if not fname.endswith((".yaml", ".yml")):
                        continue
                    fpath = Path(dirpath) / fname
                    yield fpath, skip_reason(fpath), False
        elif path.is_file():
            yield path, skip_reason(path), True
        else:
            raise UsageError(f"no such file or directory: {raw}")


# ------------------------------------------------------- OpenAPI -> JSON Schema


def openapi_to_jsonschema(node: Any) -> Any:
    """Translate a CRD structural (OpenAPI v3) schema to a strict JSON Schema."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable",) or key.startswith("x-kubernetes-"):
            continue
        if key in ("properties", "patternProperties", "definitions", "$defs"):
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = openapi_to_jsonschema(value)
        else:
            # description, default, enum, format, example, ... kept verbatim
            out[key] = copy.deepcopy(value)

    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if (
        out.get("type") == "object"
        and not preserve
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-embedded-resource")
    ):
        # Unknown fields would be pruned by the API server; kubectl's strict
        # field validation reports them: so do we.
        out["additionalProperties"] = False

    if node.get("nullable") is True:
        if "type" in out and not any(k in out for k in ("enum", "const", "anyOf", "oneOf", "allOf")):
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
        elif any(k in out for k in ("type", "enum", "const", "anyOf", "oneOf", "allOf")):
            out = {"anyOf": [{"type": "null"}, out]}
        # else: no constraint at all, null already allowed
    return out


class CrdSchemas:
    """openAPIV3Schemas of the agent-operator.dev CRDs, by (apiVersion, kind)."""

    def __init__(self, crd_dir: Path, third_party_dir: Path | None = THIRD_PARTY_CRDS):
        self.crd_dir = crd_dir
        self.third_party_dir = third_party_dir
        self.third_party_groups: set[str] = set()
        self.validators: dict[tuple[str, str], Any] = {}
        self.unserved: set[tuple[str, str]] = set()
        self.errors: list[str] = []
        self.loaded = False

    def load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        if not self.crd_dir.is_dir():
            self.errors.append(f"CRD directory {self.crd_dir} does not exist")
            return
        self._load_dir(self.crd_dir, third_party=False)
        if self.third_party_dir is not None and self.third_party_dir.is_dir():
            self._load_dir(self.third_party_dir, third_party=True)

    def has_group(self, group: str) -> bool:
        """Whether objects of ``group`` are checked against a CRD here rather than Kubernetes' schemas."""
        self.load()
        return group == CRD_GROUP or group in self.third_party_groups

    def _load_dir(self, directory: Path, third_party: bool) -> None:
        for path in sorted(directory.rglob("*.y*ml")):
            if path.suffix not in (".yaml", ".yml") or skip_reason(path):
                continue
            try:
                docs = load_documents(path.read_text())
            except (OSError, yaml.YAMLError) as exc:
                self.errors.append(f"{path}: {exc}")
                continue
            for doc in docs:
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc.get("spec") or {}
                group = spec.get("group")
                kind = (spec.get("names") or {}).get("kind")
                if not kind or (group != CRD_GROUP and not third_party):
                    continue
                if third_party:
                    self.third_party_groups.add(group)
                for version in spec.get("versions") or []:
                    api_version = f"{group}/{version.get('name')}"
                    schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
                    if not version.get("served", False):
                        self.unserved.add((api_version, kind))
                        continue
                    self.validators[(api_version, kind)] = self._make_validator(schema, path)

    def _make_validator(self, schema: dict, path: Path) -> Any:
        translated = openapi_to_jsonschema(schema)
        translated.setdefault("type", "object")
        props = translated.setdefault("properties", {})
        # metadata is checked by hand (only the name is required), and apiVersion
        # and kind are implicit in every custom resource.
        props.pop("metadata", None)
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        if isinstance(translated.get("required"), list):
            translated["required"] = [r for r in translated["required"] if r != "metadata"]
        translated["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        try:
            jsonschema.Draft202012Validator.check_schema(translated)
        except jsonschema.SchemaError as exc:
            return f"schema in {path} is not valid JSON Schema after translation: {exc.message}"
        return jsonschema.Draft202012Validator(translated)

    def validate(self, doc: dict) -> str | None:
        """None when valid, else the reason."""
        self.load()
        key = (doc.get("apiVersion"), doc.get("kind"))
        validator = self.validators.get(key)
        if validator is None:
            if key in self.unserved:
                return f"version {key[0]} of {key[1]} is not served by its CRD"
            extra = f" ({'; '.join(self.errors)})" if self.errors else ""
            return f"no CRD in {self.crd_dir} defines kind {key[1]} in {key[0]}{extra}"
        if isinstance(validator, str):
            return validator
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            return "metadata: required object is missing"
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            return "metadata.name: required"
        instance = {k: v for k, v in doc.items() if k != "metadata"}
        return _first_error(validator, instance)


# ----------------------------------------------------------- built-in kinds


class SchemaNotFound(Exception):
    pass


class K8sSchemas:
    """The kubernetes-validate strict schemas of one Kubernetes version, loaded once."""

    def __init__(self, version: str):
        if version.startswith("v"):
            version = version[1:]
        wanted = Version(kv_utils.major_minor(version))
        supported = [v for v in kv_utils.all_versions() if Version(kv_utils.major_minor(v)) <= wanted]
        if not supported:
            raise UsageError(
                f"kubernetes-validate does not ship schemas for Kubernetes {version} "
                f"(has {', '.join(kv_utils.all_versions())})"
            )
        self.schema_version = supported[-1]
        if kv_utils.major_minor(self.schema_version) != kv_utils.major_minor(version):
            raise UsageError(
                f"kubernetes-validate ships no {kv_utils.major_minor(version)} schemas "
                f"(newest: {kv_utils.latest_version()}); run scripts/install-tools.sh"
            )
        self.schema_dir = f"kubernetes-json-schema/v{self.schema_version}-local-strict"
        self.registry: Any = None
        self.validators: dict[tuple[str, str], Any] = {}

    def _registry(self) -> Any:
        if self.registry is None:
            defs = kv_utils.schema_contents(f"{self.schema_dir}/_definitions.json", self.schema_version)
            self.registry = Resource.from_contents(defs) @ Registry()
        return self.registry

    def validator(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self.validators:
            # rbac.authorization.k8s.io/v1 -> rbac-v1 ; v1 -> v1 (as kubernetes-validate does)
            flat = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            filename = f"{self.schema_dir}/{kind.lower()}-{flat}.json"
            try:
                schema = kv_utils.schema_contents(filename, self.schema_version)
            except FileNotFoundError:
                raise SchemaNotFound(
                    f"no Kubernetes {kv_utils.major_minor(self.schema_version)} schema "
                    f"for kind {kind} in {api_version}"
                ) from None
            resource = Resource.from_contents(schema)
            registry = resource @ self._registry()
            self.validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self.validators[key]

    def validate(self, doc: dict) -> str | None:
        return _first_error(self.validator(doc["apiVersion"], doc["kind"]), doc)


def _first_error(validator: Any, instance: Any) -> str | None:
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    best = jsonschema.exceptions.best_match(errors)
    # descend into anyOf/oneOf to name the innermost field that is wrong
    while best.context:
        best = jsonschema.exceptions.best_match(best.context)
    where = ".".join(str(p) for p in best.absolute_path) or "<root>"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {best.message}{more}"


# ------------------------------------------------------------------ driver


class Checker:
    def __init__(self, crds: CrdSchemas, k8s: K8sSchemas, skip_groups: set[str], quiet: bool = False):
        self.quiet = quiet
        self.crds = crds
        self.k8s = k8s
        self.skip_groups = skip_groups
        self.ok = self.failed = self.skipped = 0

    def _emit(self, status: str, label: str, reason: str | None = None) -> None:
        if not (self.quiet and status == "OK"):
            print(f"{status:<3} {label}" if reason is None else f"{status:<3} {label}: {reason}")
        if status == "OK":
            self.ok += 1
        elif status == "FAIL":
            self.failed += 1
        else:
            self.skipped += 1

    def check_text(self, text: str, source: str, require_docs: bool) -> None:
        checked = 0
        index = 0
        docs = yaml.load_all(text, Loader=_Loader)
        while True:
            try:
                doc = next(docs)
            except StopIteration:
                break
            except yaml.YAMLError as exc:
                # the stream cannot be trusted past a syntax error: stop here
                message = " ".join(str(exc).replace('in "<unicode string>", ', "").split())
                self._emit("FAIL", f"{source}#{index}", f"invalid YAML: {message}")
                return
            if doc is None:
                continue
            checked += self.check_doc(doc, f"{source}#{index}")
            index += 1
        if require_docs and checked == 0:
            self._emit("FAIL", source, "no Kubernetes documents to check (--require-docs)")

    def check_doc(self, doc: Any, label: str) -> int:
        """Checks one document (expanding Lists); returns how many were checked."""
        if not isinstance(doc, dict):
            self._emit("FAIL", label, f"document is a {type(doc).__name__}, not a mapping")
            return 1
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if kind == "List" and api_version == "v1":
            items = doc.get("items") or []
            if not isinstance(items, list):
                self._emit("FAIL", label, "List.items is not a sequence")
                return 1
            return sum(self.check_doc(item, f"{label}.items[{i}]") for i, item in enumerate(items))
        metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = metadata.get("name") or metadata.get("generateName") or "<unnamed>"
        label = f"{label} {kind or '<no kind>'}/{name}"
        if not isinstance(api_version, str) or not api_version:
            self._emit("FAIL", label, "apiVersion: required string is missing")
            return 1
        if not isinstance(kind, str) or not kind:
            self._emit("FAIL", label, "kind: required string is missing")
            return 1
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        try:
            if self.crds.has_group(group):
                reason = self.crds.validate(doc)
            else:
                reason = self.k8s.validate(doc)
        except SchemaNotFound as exc:
            if group in self.skip_groups:
                self._emit("SKIP", label, f"{exc} (group {group} is skipped)")
                return 0
            self._emit("FAIL", label, str(exc))
            return 1
        except Exception as exc:  # a broken schema must not pass silently
            self._emit("FAIL", label, f"could not validate: {type(exc).__name__}: {exc}")
            return 1
        if reason is None:
            self._emit("OK", label)
        else:
            self._emit("FAIL", label, reason)
        return 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Validate Kubernetes manifests against the Kubernetes schemas and the agent-operator.dev CRDs.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="YAML file or directory")
    parser.add_argument(
        "--crds", default=str(DEFAULT_CRDS), metavar="DIR",
        help="directory with the agent-operator.dev CRD YAML files (default: %(default)s)",
    )
    parser.add_argument("--stdin", action="store_true", help="also read a multi-document YAML stream from stdin")
    parser.add_argument(
        "--require-docs", action="store_true",
        help="fail a file (or stdin) that holds no document that could be checked",
    )
    parser.add_argument(
        "-k", "--kubernetes-version", default=DEFAULT_K8S_VERSION,
        help="Kubernetes version whose schemas to use (default: %(default)s)",
    )
    parser.add_argument(
        "--skip-unknown-group", action="append", default=[], metavar="GROUP",
        help="print SKIP instead of FAIL for kinds of this API group that have no schema (repeatable)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only FAIL and SKIP lines")
    args = parser.parse_args(argv)
    if not args.paths and not args.stdin:
        parser.error("give at least one PATH or --stdin")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        k8s = K8sSchemas(args.kubernetes_version)
        checker = Checker(CrdSchemas(Path(args.crds)), k8s, set(args.skip_unknown_group), args.quiet)
        files = list(collect_files(args.paths))
    except UsageError as exc:
        print(f"validate_manifests: error: {exc}", file=sys.stderr)
        return 2

    if args.stdin:
        checker.check_text(sys.stdin.read(), "<stdin>", args.require_docs)
    for path, reason, explicit in files:
        if reason is not None:
            if explicit:
                print(f"SKIP {path}: {reason}")
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            checker._emit("FAIL", str(path), f"cannot read: {exc}")
            continue
        checker.check_text(text, str(path), args.require_docs)

    if checker.ok + checker.failed == 0 and args.require_docs:
        checker._emit("FAIL", "<input>", "no documents to check (--require-docs)")
    print(
        f"validate_manifests: {checker.ok} ok, {checker.failed} failing, {checker.skipped} skipped"
    )
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
