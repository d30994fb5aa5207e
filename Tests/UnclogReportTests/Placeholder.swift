// Temporary: replaced by the export, report and diff tests.
import Testing
