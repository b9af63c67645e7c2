// Loopgate's own small script.
