#!/usr/bin/env python3
"""keepalived's configuration for one node of the bench labs, from the fleet's lab.conf.

    keepalived-conf.py NODE PRIORITY LAB_CONF ADVERT_INT

Every vrrp_instance of LAB_CONF (its virtual_router_id and its 10.99.0.x/24 VIPs), as a
keepalived VRRPv3 instance on eth0: state BACKUP, PRIORITY, advert_int ADVERT_INT, multicast.
No cluster block, no sync groups, no virtual servers: the VRRP part an operator would run
with keepalived on the same lab."""
import re
import sys

node, prio, src, adv = sys.argv[1], sys.argv[2], open(sys.argv[3]).read(), sys.argv[4]
print(f"global_defs {{\n  router_id {node}\n  vrrp_version 3\n}}")
for m in re.finditer(r"vrrp_instance (\S+) \{(.*?)\n\}", src, re.S):
    name, body = m.group(1), m.group(2)
    vrid = re.search(r"virtual_router_id (\d+)", body).group(1)
    vips = re.findall(r"(10\.99\.0\.\d+/24)", body)
    print(f"vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n"
          f"  priority {prio}\n  advert_int {adv}\n  virtual_ipaddress {{")
    for v in vips:
        print(f"    {v} dev eth0")
    print("  }\n}")
