"""4-bit weight quantization: round-to-nearest and GPTQ on group-aligned integer grids."""
