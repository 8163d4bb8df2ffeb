"""Downloadable exports of portal data: official Word documents (GB/T 9704-2012
layout) and calendar files for meetings."""
