"""The xl.cfg language as libxlu reads it: source positions, tokens, the parser."""
