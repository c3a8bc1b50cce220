"""The PyTorch peer of bench/fleet-table.ts, one module per job; bench/peers/fleet_torch.py is its command.

  spec       what each zoo kind has: options, ONNX initializers and where they go in torch, inputs/outputs
  handoff    reading and validating the hand-off (fleet.json + raw tensors), layout conversions
  models     the zoo kinds as torch modules named as the ONNX initializers; build and load per tenant
  runners    units of work and the peers: eager, streams, graph, vmap, vmap_graph
  timing     tick timing, percentiles, the card's peaks
  check      outputs against Loom's
  run        one fleet end to end -> the result document
  self_test  --self-test (no torch)
  cli        arguments, exit codes, result file
  deps       numpy / torch when installed
  util       JSON-safe values, CPU name, log
"""
