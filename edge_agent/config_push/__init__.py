"""Config pushed by HQ: check it, apply it live, check the box is well, or roll it back."""
