"""Speed and memory figures, printed and never asserted. Run each from the repository root as a module,
`python -m benchmarks.bench_startup` (or `make bench` for all): some import the tests' helpers by name."""
