"""sla — knows when every open ticket is due and says so (TicketOverdue) the moment it is late.

State (plans, department plans, open tickets' due dates) is built from events into its tables;
the overdue timer reads the earliest due dates through an index instead of scanning.
"""
