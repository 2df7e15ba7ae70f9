"""Receipt coupons: the printed document, its ESC/POS layout, preview, and the print worker."""
