import Testing
import Formats

// Tests for Formats arrive with the issue that builds the module.
