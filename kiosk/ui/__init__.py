"""The patient-facing touch screen: layouts, message catalogues, drawing and voice."""
