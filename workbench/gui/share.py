"""Sharing: the builder's state in a URL, spec uploads, and Python code that rebuilds and trains the model.

A shared link carries `?s=<state>`: the JSON of {spec, setup} compressed with zlib and written in
unpadded base64url, so a network of a few blocks fits in a few hundred characters.
"""

from __future__ import annotations

import base64
import binascii
import json
import pprint
import zlib
from typing import Any

from ..spec import SpecError, load_spec
from ..data import DatasetError, check_dataset_options
from ..errors import WorkbenchError
from ..limits import parse_json

STATE_PARAM = "s"
STATE_VERSION = 1
MAX_STATE_CHARS = 60_000  # the compressed, base64url state in a link
MAX_STATE_BYTES = 512 * 1024  # the same state decompressed: a 1,000-block spec is far below this
MAX_UPLOAD_BYTES = 2_000_000
# The server reads request headers up to this size, so an over-long link reaches the app and gets
# its message instead of a dropped connection (Tornado's default limit is 64 KiB).
MAX_REQUEST_HEADER_BYTES = 1 << 20


class ShareError(WorkbenchError, ValueError):
    """A link or upload that cannot be read; the message says what to do."""


def encode_state(payload: dict) -> str:
    """Compact base64url text of a JSON-ready dict."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def decode_state(text: str | bytes) -> dict:
    """The dict encoded by `encode_state`; ShareError if the text is damaged or not ours."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    text = (text or "").strip()
    if not text:
        raise ShareError("the link holds no workbench state")
    if len(text) > MAX_STATE_CHARS:
        raise ShareError(f"the link's state is {len(text):,} characters long, more than a workbench network's "
                         f"{MAX_STATE_CHARS:,}: share the spec as a file (“Download spec”) instead")
    damaged = ("the link's state is damaged (it may have been cut off when copied): copy the whole link again")
    try:
        raw = _inflate(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        payload = parse_json(raw.decode("utf-8"), "the link's state", ShareError, lambda err: damaged)
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as err:
        raise (err if isinstance(err, ShareError) else ShareError(damaged)) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("spec"), dict):
        raise ShareError("the link does not hold a workbench network")
    if payload.get("v", STATE_VERSION) != STATE_VERSION:
        raise ShareError(f"the link was made by a newer workbench (state version {payload.get('v')})")
    _check_setup(payload.get("setup"))
    return payload


def _inflate(data: bytes) -> bytes:
    """zlib-decompress at most MAX_STATE_BYTES, refusing more (a small link may inflate enormously)."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(data, MAX_STATE_BYTES)
    if inflater.unconsumed_tail or (not inflater.eof and inflater.decompress(b"", 1)):
        raise ShareError(f"the link's state unpacks to more than {MAX_STATE_BYTES // 1024} KiB, more than any "
                         "workbench network: this is not a workbench link")
    if not inflater.eof:
        raise zlib.error("truncated")
    return raw


def _check_setup(setup: object) -> None:
    """A link's settings are data: dataset options within their bounds and no file paths."""
    if setup is None:
        return
    if not isinstance(setup, dict):
        raise ShareError("the link's settings are damaged: copy the whole link again")
    options = setup.get("dataset_options") or {}
    if not isinstance(options, dict):
        raise ShareError("the link's dataset options are damaged: copy the whole link again")
    if "path" in options:
        raise ShareError("the link names a file for its dataset; a link cannot read files on this machine: "
                         "choose the dataset and its file here")
    name = setup.get("dataset", "circles")
    try:
        check_dataset_options(name, options)
    except DatasetError as err:
        raise ShareError(f"the link's dataset settings are not valid: {err}") from None


def upload_text(data: bytes | str, filename: str, *, limit: int, what: str, fix: str) -> str:
    """The UTF-8 text of an uploaded file of at most `limit` bytes; ShareError naming `what` it should be and
    the `fix` otherwise."""
    if len(data) > limit:
        raise ShareError(f"{filename} is {len(data):,} bytes; {what} is at most {limit:,}: {fix}")
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ShareError(f"{filename} is not a text file: {fix}") from None
    return data


def parse_upload(data: bytes | str, filename: str = "upload") -> dict:
    """A spec dict from an uploaded JSON file, fully validated; ShareError says what is wrong."""
    data = upload_text(data, filename, limit=MAX_UPLOAD_BYTES, what="a spec JSON",
                       fix="upload a spec JSON exported with “Download spec”")
    value = parse_json(data, filename, ShareError, lambda err: (
        f"{filename} is not valid JSON ({err.msg}, line {err.lineno}): upload a spec JSON exported with "
        "“Download spec”"))
    if isinstance(value, dict) and "spec" in value and isinstance(value["spec"], dict) and "blocks" not in value:
        value = value["spec"]  # a run record or a shared-state export: take its spec
    if not isinstance(value, dict) or "blocks" not in value:
        raise ShareError(f"{filename} is JSON but not a network spec: it needs 'input_shape' and 'blocks'")
    try:
        return load_spec(value).to_dict()
    except SpecError as err:
        raise ShareError(f"{filename} is not a valid network: {err}") from None


def spec_json(spec: dict) -> str:
    return json.dumps(spec, indent=2)


def _literal(value: Any, indent: int = 0) -> str:
    text = pprint.pformat(value, indent=1, width=100, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def generate_code(spec: dict, setup: dict, *, weights_path: str | None = None) -> str:
    """A Python script that rebuilds the network with workbench.compile and trains it with workbench.training.train."""
    name = spec.get("name") or "network"
    weights_path = weights_path or f"{name}.pt"
    compile_options = {"target": setup.get("target", "torch"), "gradient": setup.get("gradient", "auto"),
                       "shots": setup.get("shots") or None, "noise": dict(setup.get("noise") or {}) or None,
                       "precision": setup.get("precision", "single")}
    train_options = {"epochs": setup.get("epochs", 20), "batch_size": setup.get("batch_size", 32),
                     "optimizer": setup.get("optimizer", "adam"), "lr": setup.get("lr", 0.05),
                     "seed": setup.get("seed", 0)}
    lines = [
        f'"""Rebuild and train {name!r} outside the GUI (generated by the Hybrid Quantum Workbench)."""',
        "",
        "import workbench",
        "from workbench.training import train",
        "",
        "# The network, exactly as the GUI's “Download spec JSON” writes it.",
        f'SPEC = r"""{json.dumps(spec, indent=2)}"""',
        "",
        f"DATASET = {setup.get('dataset', 'circles')!r}",
        f"DATASET_OPTIONS = {_literal(dict(setup.get('dataset_options') or {}), 18)}",
        f"COMPILE = {_literal(compile_options, 10)}",
        f"TRAINING = {_literal(train_options, 11)}",
        "",
        "",
        "def main():",
        "    spec = workbench.load_spec(SPEC)  # parses and validates blocks and shapes",
        "    model = workbench.compile(spec, **COMPILE)",
        "    model.describe()",
        "    # Pass store=workbench.RunStore() to record the run in the workbench's run history.",
        "    result = train(spec, DATASET, dataset_options=DATASET_OPTIONS, **TRAINING, **COMPILE)",
        "    print('status:', result.status)",
        "    for key, value in sorted(result.final.items()):",
        "        print(f'{key}: {value}')",
        f"    path = result.model.save({weights_path!r})",
        "    print('weights saved to', path)",
        "    return result",
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]
    return "\n".join(lines)


def highlight_python(code: str) -> str:
    """The code as self-contained HTML (inline styles: no stylesheet, no editor script to fetch)."""
    import html as _html

    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pygments comes with IPython; plain text otherwise
        body = f"<pre>{_html.escape(code)}</pre>"
    else:
        body = highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, style="friendly", nobackground=True))
    return ("<div class='wb-code-block' style='max-height:520px;overflow:auto;background:#f8fafc;border:1px solid "
            "#e2e8f0;border-radius:8px;padding:4px 12px;font-size:12.5px'>" + body + "</div>")
