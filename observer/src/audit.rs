//! The auditor (to come in this change).
