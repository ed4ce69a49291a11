"""`footfall bench NAME`: each benchmark prints a readable table, then, as its last line, one JSON object of its
figures. A reference is measured in the same run (these machines are shared and noisy): report medians and ratios."""

BENCHMARKS: dict[str, str] = {
    "env": "footfall.benchmarks.env_throughput",
    "train": "footfall.benchmarks.train_bench",
    "deploy": "footfall.benchmarks.deploy_bench",
    "ik": "footfall.benchmarks.ik_bench",
    "zmp": "footfall.benchmarks.zmp_bench",
    "mpc": "footfall.benchmarks.mpc_bench",
    "faults": "footfall.benchmarks.faults_bench",
}
