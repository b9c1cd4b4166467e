import Testing
import Merge

// Tests for Merge arrive with the issue that builds the module.
