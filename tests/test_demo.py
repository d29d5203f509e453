"""`edge demo`, the README's first command: the shipped bundle on the shipped real images, no TensorFlow."""

import json

from test_no_tensorflow import run_without_tensorflow


def test_demo_flags_defective_samples_and_few_good_ones(tmp_path):
    out = tmp_path / "demo-out"
    result = run_without_tensorflow(
        f"""
from edge_cli.app import main
sys.argv = ["edge", "demo", "--out", {str(out)!r}]
main()
"""
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    flagged = {a["source"] for a in alerts}
    good_flagged = {s for s in flagged if s.startswith("good_")}
    assert len(flagged - good_flagged) >= 6, flagged  # of the 10 defective samples
    assert len(good_flagged) <= 1, good_flagged  # of the 8 good ones
    for alert in alerts:
        assert alert["score"] > alert["threshold"]
        assert (out / "snapshots").is_dir() and alert["annotated"].startswith(str(out))
    assert len((out / "events.jsonl").read_text().splitlines()) == len(alerts)
    assert "defective samples flagged" in result.stderr
