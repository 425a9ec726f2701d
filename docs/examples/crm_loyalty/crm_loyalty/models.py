from piccolo.columns import ForeignKey, Integer, Varchar
from piccolo.table import Table


class Tier(Table, tablename="crm_loyalty_tier"):
    name = Varchar(length=50)
    min_points = Integer(default=0)


class Account(Table, tablename="crm_loyalty_account"):
    customer = Varchar(length=200)
    points = Integer(default=0)
    tier = ForeignKey(Tier, null=True)
    version = Integer(default=1)
