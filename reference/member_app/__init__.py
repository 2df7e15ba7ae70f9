"""The member app's side of in-store presence, as a reference for the app's developers."""
