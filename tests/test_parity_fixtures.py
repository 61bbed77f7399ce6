"""The parity suites skip when no fixtures are found; this test makes that absence a failure."""

from parity import fixture_dirs, fixture_root


def test_parity_fixtures_are_present():
    assert fixture_dirs(), (
        f"No official-parity fixtures under {fixture_root()}: the default set lives in tests/fixtures/official-parity; "
        "restore it from git or point ODTRACK_PARITY_FIXTURES at a fixture set."
    )
