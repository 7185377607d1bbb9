"""Integration tests of the leads service: over HTTP, with the real broker and stores."""
