"""The box's end of the link to HQ (issue 8): today the batch signer; the outbox pump follows."""
