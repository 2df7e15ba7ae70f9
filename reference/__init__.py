"""Reference implementations of what other parties build (the member app's side of a wire)."""
