import Testing
import Runtime

// Tests for Runtime arrive with the issue that builds the module.
