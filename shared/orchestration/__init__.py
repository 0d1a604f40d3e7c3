"""The engine-agnostic durable orchestrator, its activities, and the two engine adapters."""
