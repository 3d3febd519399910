def pytest_terminal_summary(terminalreporter):
    """The fault audit as one table after the run, even when output is captured (CI)."""
    from tests.faults.test_faults import ROWS, table_lines

    if ROWS:
        terminalreporter.section("fault audit")
        for line in table_lines(ROWS):
            terminalreporter.write_line(line)
