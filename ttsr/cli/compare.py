"""``compare``: two infer reports side by side, a release gate on the change between them."""

from __future__ import annotations

from pathlib import Path

import click

COMPARE_EPILOG = """\b
Examples:
  # this build against the last release, over the same pairs and shapes
  python infer.py --lr-dir lr --ref-dir ref --engine ttsr.engine --checkpoint ttsr-rec.pth \\
      --iterations 20 --json this.json
  ttsr compare release.json this.json --max-latency-regression 10 --max-psnr-drop 0.5

\b
A and B are --json reports of infer.py.  Images are matched by name, latency by
shape (batch, LR size / Ref size).  Per image and for the mean: PSNR/SSIM of A, of B
and B - A, against the PyTorch reference (and HR when both have it).  Per shape:
mean, median and p99 Host Latency, and B's change in % of A (p99 only where both
reports have enough calls for it).  A limit marks a change beyond it FAIL and makes
the exit status 1; without limits the table only shows the deltas.  A file that
is not an infer report, or two reports with nothing in common, exit 2.
"""


class BadReport(click.ClickException):
    """A report that cannot be compared: exit 2, so that a script can tell it from a regression (1)."""

    exit_code = 2


@click.command("compare", epilog=COMPARE_EPILOG, context_settings={"max_content_width": 100})
@click.argument("report_a", type=click.Path(path_type=Path))
@click.argument("report_b", type=click.Path(path_type=Path))
@click.option("--max-latency-regression", type=click.FloatRange(min=0), metavar="PCT",
              help="Fail when a shape's mean, median or p99 Host Latency in B exceeds A's by more than PCT %.")
@click.option("--max-psnr-drop", type=click.FloatRange(min=0), metavar="DB",
              help="Fail when an image's (or the mean) PSNR in B is more than DB below A's.")
def compare_command(report_a: Path, report_b: Path, max_latency_regression: float | None,
                    max_psnr_drop: float | None) -> None:
    """Compare two infer reports (A: e.g. the last release, B: this build): PSNR/SSIM and latency deltas."""
    from ttsr.report.compare import CompareError, compare, load_report

    try:
        result = compare(load_report(report_a), load_report(report_b),
                         max_latency_regression=max_latency_regression, max_psnr_drop=max_psnr_drop)
    except CompareError as exc:
        raise BadReport(str(exc)) from None
    click.echo(f"=== Compare: A = {report_a}, B = {report_b} ===")
    click.echo(result.table())
    for note in result.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if max_latency_regression is None and max_psnr_drop is None:
        return
    failed = result.failed
    if failed:
        click.echo(f"[FAILED] {len(failed)} change(s) beyond the limits: "
                   + ", ".join(f"{d.quantity} {d.subject}" for d in failed))
        click.get_current_context().exit(1)
    click.echo(f"[PASSED] no change beyond the limits ({len(result.deltas)} compared).")
