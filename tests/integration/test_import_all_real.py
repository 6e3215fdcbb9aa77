"""Every real file family in ../shared/data/real imports through the CLI, or is refused clearly.

The refusals are documented in docs/data-families.md; anything else failing
here means a real-world file a user has would not load.
"""

from __future__ import annotations

import pytest

from hydraquant.cli.main import main
from hydraquant.data.lake import Lake
from tests.conftest import REAL_DATA

# (file name fragment, words the refusal must contain)
REFUSED = {
    "metadata_range_1m": "metadata",
    "coinglass_basis": "no lake kind",
    "coinglass_cvd": "no lake kind",
    "coinglass_taker_volume": "no lake kind",
}


def real_files() -> list:
    if not REAL_DATA.is_dir():
        return []
    return [
        p for p in sorted(REAL_DATA.rglob("*"))
        if p.is_file() and p.name not in ("README.md", "MANIFEST.json") and not p.name.endswith(".CHECKSUM")
    ]


@pytest.mark.slow
@pytest.mark.realdata
def test_every_real_file_imports_or_is_refused_with_a_reason(tmp_path, capsys):
    files = real_files()
    if not files:
        pytest.skip(f"real market data not found at {REAL_DATA}")
    lake = tmp_path / "lake"
    imported, refused, problems = 0, 0, []
    for path in files:
        code = main(["--quiet", "--lake", str(lake), "import", str(path)])
        out = capsys.readouterr()
        expected = next((why for frag, why in REFUSED.items() if frag in path.name), None)
        if expected is None:
            if code != 0:
                problems.append(f"{path.relative_to(REAL_DATA)}: exit {code}: {out.err.strip()[:200]}")
            imported += 1
        else:
            if code == 0 or expected not in out.err or "Traceback" in out.err:
                problems.append(f"{path.relative_to(REAL_DATA)} should be refused mentioning {expected!r}")
            refused += 1
    assert not problems, "\n".join(problems)
    assert refused == len(REFUSED)
    assert imported >= 150
    tables = Lake(lake).tables()
    kinds = {t.kind for t in tables}
    assert {"klines", "aggTrades", "trades", "funding", "open_interest", "bookTicker", "liquidations",
            "markPriceKlines"} <= kinds
    # re-importing a file adds nothing
    one = REAL_DATA / "binance-um-futures-funding-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2019-09-10_2024-12-31.csv.gz"
    fresh = tmp_path / "fresh"
    assert main(["--lake", str(fresh), "import", str(one), "--kind", "funding"]) == 0
    before = Lake(fresh).scan("funding", ["BTCUSDT"]).collect()
    assert main(["--lake", str(fresh), "import", str(one), "--kind", "funding"]) == 0
    after = Lake(fresh).scan("funding", ["BTCUSDT"]).collect()
    assert before.height == 5819 and after.equals(before)
