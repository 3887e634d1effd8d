"""Studies behind mono-depth-study: several networks and variants of them trained alike on one
world, for several seeds, scored and timed side by side (config, runner, report).

Above bench in the layer order: a study times each network with bench's model-only code.
"""
