//! Integration tests: the real binary against a loopback X API emulator.
