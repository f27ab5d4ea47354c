"""The `atlas` command: `build`, `layers` and `serve`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from atlas.config import DEFAULT_CONFIG
from atlas.errors import AtlasError, ConfigError

logger = logging.getLogger("atlas")

# Files over this many makes some static hosts refuse a deployment.
FILE_COUNT_WARNING = 20_000


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.run(args)
    except AtlasError as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished results are kept in the cache", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: say so, trace only with -v
        if args.verbose:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            f"run again with -v for the traceback, and please report it",
            file=sys.stderr,
        )
        return 1


def _build(args: argparse.Namespace) -> int:
    from atlas.config import load_settings

    _import_tensorflow(args.verbose)
    settings = load_settings(args.config, output=args.output)
    from atlas.preflight import preflight

    preflight(settings)
    from atlas.pipeline import build

    report = build(settings)
    _print_report(report)
    return 0


def _layers(args: argparse.Namespace) -> int:
    from atlas.config import load_settings

    _import_tensorflow(args.verbose)
    settings = load_settings(args.config)
    from atlas.loading import open_model
    from atlas.model import describe_layers

    model = open_model(settings.model, settings.root)
    rows = [
        (info.name, info.class_name, str(tuple(info.output_shape[1:])), info.units)
        for info in describe_layers(model)
    ]
    for line in layer_table(rows, set(settings.layers.names)):
        print(line)
    print("(* = in layers.names)")
    return 0


def layer_table(
    rows: Sequence[tuple[str, str, str, int]], chosen: set[str]
) -> list[str]:
    """The `atlas layers` table: (layer, class, output shape, units) rows in
    columns as wide as their longest entry, layers in `chosen` marked *."""
    header = ("layer", "class", "output shape", "units")
    widths = [max(len(str(row[c])) for row in (header, *rows)) for c in range(3)]
    lines = []
    for row in (header, *rows):
        cells = [
            str(cell).ljust(width) for cell, width in zip(row[:3], widths, strict=True)
        ]
        mark = " *" if row is not header and row[0] in chosen else ""
        lines.append(" ".join([*cells, str(row[3])]) + mark)
    return lines


def _serve(args: argparse.Namespace) -> int:
    from atlas.config import load_settings
    from atlas.serve import serve

    if args.live:
        return _serve_live(args)
    if args.host is not None:
        raise ConfigError(
            f"--host {args.host!r} is for the live probe; add --live, or drop "
            "--host to preview the static site on 127.0.0.1."
        )
    folder = Path(args.output) if args.output else None
    if folder is None:
        folder = load_settings(args.config).output.dir
    serve(folder, port=args.port)
    return 0


def _serve_live(args: argparse.Namespace) -> int:
    from atlas.config import load_settings

    _import_tensorflow(args.verbose)
    settings = load_settings(args.config, output=args.output)
    from atlas.live.server import open_live, serve_live

    if not args.verbose:
        logging.getLogger("uvicorn").setLevel(logging.WARNING)
    serve_live(open_live(settings, settings.output.dir), args.port, args.host)
    return 0


def _print_report(report) -> None:
    size_mb = report.bytes / 1e6
    print(
        f"built {report.layers} layer(s), {report.units} units, {report.pages} "
        f"pages in {report.seconds:.1f} s\n"
        f"site: {report.output / 'index.html'}\n"
        f"size: {report.files} files, {size_mb:.2f} MB"
    )
    if report.logits_accuracy is not None:
        print(
            f"logits check: the model assigns {report.logits_accuracy:.0%} of "
            f"the output units' images to the unit's own class"
        )
    if report.files > FILE_COUNT_WARNING:
        logger.warning(
            "the site has %d files; some static hosts refuse more than %d",
            report.files,
            FILE_COUNT_WARNING,
        )
    if report.low_quality:
        shown = ", ".join(report.low_quality[:20])
        more = len(report.low_quality) - 20
        print(
            f"low-quality units ({len(report.low_quality)}): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable file(s):")
        for line in report.skipped:
            print(f"  {line}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas", description="Build and browse neuron atlases of Keras models."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs and tracebacks"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the atlas site")
    _config_option(build)
    build.add_argument("--output", help="output folder (default: output.dir)")
    build.set_defaults(run=_build)

    layers = commands.add_parser("layers", help="list the layers with units")
    _config_option(layers)
    layers.set_defaults(run=_layers)

    serve = commands.add_parser("serve", help="preview the built site on 127.0.0.1")
    _config_option(serve)
    serve.add_argument("--output", help="site folder (default: output.dir)")
    serve.add_argument("--port", type=int, default=8000, help="default 8000")
    serve.add_argument(
        "--live", action="store_true", help="also run the live probe (model warm)"
    )
    serve.add_argument(
        "--host",
        help="listen on this address instead of 127.0.0.1 (with --live; "
        "others on the network can then use the probe)",
    )
    serve.set_defaults(run=_serve)
    for sub in (build, layers, serve):
        sub.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS
        )
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"config file (default: {DEFAULT_CONFIG})",
    )


def _import_tensorflow(verbose: bool) -> None:
    """Import TensorFlow with its C++ start-up log silenced unless -v.

    TensorFlow writes oneDNN and CUDA notices straight to file descriptor
    2 as it loads, before any Python setting can reach its logger.
    """
    if verbose:
        import tensorflow  # noqa: F401

        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _configure_logging(verbose: bool) -> None:
    # TensorFlow's C++ side logs device probing (no CUDA driver, oneDNN
    # types) as errors; ours say what failed. -v shows them all.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbose else "3")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
    )
    for noisy in ("absl", "h5py", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # One compiled function per layer is by design: its retracing notice
    # is noise to a user.
    quiet = logging.WARNING if verbose else logging.ERROR
    logging.getLogger("tensorflow").setLevel(quiet)
    if not verbose:
        logging.getLogger("atlas").setLevel(logging.INFO)
