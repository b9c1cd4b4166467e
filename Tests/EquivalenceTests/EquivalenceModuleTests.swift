import Testing
import Equivalence

// Tests for Equivalence arrive with the issue that builds the module.
