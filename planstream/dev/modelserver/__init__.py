"""The scripted OpenAI-compatible model server that answers locally and in tests."""
