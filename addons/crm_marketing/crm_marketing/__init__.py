"""crm_marketing: segments, lists, e-mail campaigns with tracking and ROI."""
