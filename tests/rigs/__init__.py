"""Test rigs: private copies of parts of the stack (a notification pipeline, a browser) that tests and
`make screenshots` drive. Not shipped: the wheel and the image carry app/ and worker/ only."""
