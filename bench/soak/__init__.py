"""The chaos soak (`make soak`, `python -m bench soak`): a real stack under load while a fault
schedule runs, then a check from the simulators' records that nothing was lost, doubled or reordered.

- stack.py: the connector's processes (web, workers, listener) on a Redis the harness owns, the
  simulators in this process;
- faults.py: the fault schedule (each fault recorded with its start and end); seams.py: the
  simulators' fault switches it uses (provider failure rate, ECE refusing connections);
- load.py: customers on five channels and agents on ECE and Hybrid Chat;
- check.py: the end-of-run accounting; report.py: bench/results/soak-<timestamp>.md;
- run.py: the whole run, for `make soak` and tests/e2e/test_soak.py.
"""
