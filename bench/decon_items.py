"""Test items and train rows for the decontamination tests, written for the pack (not taken from
GSM8K or MATH): each test item comes with

    edits       light edits: a word changed/added/dropped, case, punctuation, spacing,
                number formats (1,200 / 1200, three / 3), LaTeX delimiters, the item embedded
                in a longer row; all must be removed
    rephrase    the same problem in other words, numbers kept; >= 65 % must be removed
    new_numbers the same problem with other numbers; must be removed under --policy strict
                (None for items under 10 words: numbers-masked, they match too much)
    distinct    other problems sharing a template phrase or the same numbers; none may be
                removed, under either policy
    hard_negatives (some items) other problems sharing the same numbers AND much of the
                wording: the blind spot of numbers_overlap, measured and documented, not
                asserted

`kind` says which public schema the item is written in: "gsm8k" {"question", "answer"} or
"math" {"problem", "level", "type", "solution"}.
"""

ITEMS = [
    dict(
        kind="gsm8k",
        test="Maria buys 3 boxes of pencils. Each box holds 12 pencils. She gives 8 pencils to "
        "her brother. How many pencils does Maria have left?",
        answer="3 * 12 = 36 pencils. 36 - 8 = 28. #### 28",
        edits=[
            "Maria bought 3 boxes of pencils. Each box holds 12 pencils. She gives 8 pencils to "
            "her brother. How many pencils does Maria have left?",
            "maria buys 3 boxes of pencils; each box holds 12 pencils -- she gives 8 pencils to "
            "her brother.   how many pencils does maria have left",
        ],
        rephrase="Maria purchased 3 packs of pencils, and there are 12 pencils in every pack. "
        "After handing 8 of them to her brother, how many pencils does she still have?",
        new_numbers="Maria buys 5 boxes of pencils. Each box holds 10 pencils. She gives 7 "
        "pencils to her brother. How many pencils does Maria have left?",
        distinct=[
            "A farmer plants 3 rows of apple trees with 12 trees in a row. A storm knocks down "
            "8 trees. How many trees are still standing?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Ann is 12 years old. Her brother Ben is 4 years older than she is. What is the sum "
        "of the ages of Ann and Ben?",
        answer="Ben is 12 + 4 = 16. 12 + 16 = 28. #### 28",
        edits=[
            "Ann is 12 years old. Her brother Ben is 4 years older than she is. What is the sum "
            "of the ages of Ann and Ben now?",
            "Ann is twelve years old. Her brother Ben is four years older than she is. What is "
            "the sum of the ages of Ann and Ben?",
        ],
        rephrase="Ben is 4 years older than his sister Ann, who is 12. If you add their two ages "
        "together, what total do you get?",
        new_numbers="Ann is 9 years old. Her brother Ben is 6 years older than she is. What is "
        "the sum of the ages of Ann and Ben?",
        distinct=[
            "Carl is three times as old as his son, who is 11. What is the sum of the ages of "
            "Carl and his son?",
            "Grandma Rose is 70 and her grandson Leo is 9. What is the sum of the ages of the two "
            "of them in 5 years?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A bakery sells muffins for $3 each and cookies for $2 each. On Monday it sold 45 "
        "muffins and 60 cookies. How much money did the bakery make on Monday?",
        answer="45 * 3 = 135. 60 * 2 = 120. 135 + 120 = 255. #### 255",
        edits=[
            "A bakery sells muffins for $3 each and cookies for $2 each. On Monday it sold 45 "
            "muffins and 60 cookies. How much money did the bakery earn on Monday?",
            "Question: A bakery sells muffins for $3 each and cookies for $2 each. On Monday it "
            "sold 45 muffins and 60 cookies. How much money did the bakery make on Monday? "
            "Answer: It made 45 * 3 + 60 * 2 = 255 dollars.",
        ],
        rephrase="Muffins cost $3 apiece at a bakery, while cookies cost $2 apiece. If the bakery "
        "sold 45 muffins and 60 cookies on Monday, what was its total revenue that day?",
        new_numbers="A bakery sells muffins for $4 each and cookies for $1 each. On Monday it "
        "sold 30 muffins and 75 cookies. How much money did the bakery make on Monday?",
        distinct=[
            "A school bus makes 3 trips in the morning and 2 trips in the afternoon. It carries "
            "45 students on a morning trip and 60 on an afternoon trip. How many rides does it "
            "give in a day?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A swimming pool holds 1,200 gallons of water. A hose fills it at 25 gallons per "
        "minute. How many minutes will it take to fill the empty pool?",
        answer="1200 / 25 = 48. #### 48",
        edits=[
            "A swimming pool holds 1200 gallons of water. A hose fills it at 25 gallons per "
            "minute. How many minutes will it take to fill the empty pool?",
            "A swimming pool holds 1,200 gallons of water. A garden hose fills it at 25 gallons "
            "per minute. How many minutes will it take to fill the empty pool?",
        ],
        rephrase="An empty pool has a capacity of 1,200 gallons. If water flows in from a hose "
        "at a rate of 25 gallons every minute, how long, in minutes, until the pool is full?",
        new_numbers="A swimming pool holds 900 gallons of water. A hose fills it at 30 gallons "
        "per minute. How many minutes will it take to fill the empty pool?",
        distinct=[
            "Zoe has 25 stamps, and her new album has room for 1,200 stamps. How many pages "
            "does she fill if each page holds 8 stamps?",
        ],
        hard_negatives=[
            "A printer prints 25 pages per minute. How many minutes does it take to print a "
            "report of 1,200 pages?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Liam has 5 times as many stickers as Noah. Together they have 84 stickers. How "
        "many stickers does Noah have?",
        answer="6 parts = 84, so Noah has 84 / 6 = 14. #### 14",
        edits=[
            "Liam has 5 times as many stickers as Noah. Together they have 84 stickers. How many "
            "stickers does Noah own?",
            "LIAM HAS 5 TIMES AS MANY STICKERS AS NOAH. TOGETHER THEY HAVE 84 STICKERS. HOW MANY "
            "STICKERS DOES NOAH HAVE?",
        ],
        rephrase="Noah and Liam share 84 stickers in total, and Liam owns 5 times the number "
        "Noah owns. How many stickers belong to Noah?",
        new_numbers="Liam has 3 times as many stickers as Noah. Together they have 96 stickers. "
        "How many stickers does Noah have?",
        distinct=[
            "A rope is 84 meters long. It is cut into 5 equal pieces and one more piece of 4 "
            "meters is added. How long is each piece?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A train leaves the station at 9:15 am and travels at 80 kilometers per hour. It "
        "arrives at 11:45 am. How many kilometers did the train travel?",
        answer="2.5 hours * 80 = 200. #### 200",
        edits=[
            "A train leaves the station at 9:15 am and travels at 80 kilometers per hour. It "
            "arrives at 11:45 am. How many kilometers did it travel?",
            "A train leaves the station at 9:15 a.m. and travels at 80 kilometres per hour. It "
            "arrives at 11:45 a.m. How many kilometres did the train travel?",
        ],
        rephrase="Departing at 9:15 am, a train moves at a steady 80 kilometers per hour until "
        "it reaches its destination at 11:45 am. What distance did it cover in kilometers?",
        new_numbers="A train leaves the station at 7:30 am and travels at 90 kilometers per hour. "
        "It arrives at 10:30 am. How many kilometers did the train travel?",
        distinct=[
            "A cyclist rides at 15 kilometers per hour for 80 minutes, then rests. The ride "
            "started at 9:45 am. At what time did the ride end?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Olivia reads 35 pages of her book every day. The book has 420 pages. She has "
        "already read for 6 days. How many more days does she need to finish the book?",
        answer="6 * 35 = 210. 420 - 210 = 210. 210 / 35 = 6. #### 6",
        edits=[
            "Olivia reads 35 pages of her novel every day. The novel has 420 pages. She has "
            "already read for 6 days. How many more days does she need to finish the novel?",
            "Olivia reads 35 pages of her book every day. The book has 420 pages. She has "
            "already read for six days. How many more days does she need to finish the book?",
        ],
        rephrase="A 420-page book is being read by Olivia at a pace of 35 pages per day. After 6 "
        "days of reading, how many additional days will it take her to reach the end?",
        new_numbers="Olivia reads 25 pages of her book every day. The book has 300 pages. She has "
        "already read for 4 days. How many more days does she need to finish the book?",
        distinct=[
            "A library has 420 books on 6 shelves, and each week it adds 35 new books. How many "
            "books will it have after 4 weeks?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A store sells a jacket for $80. During a sale the price is reduced by 25%. Tom "
        "buys 2 jackets on sale. How much does Tom pay?",
        answer="80 * 0.75 = 60. 2 * 60 = 120. #### 120",
        edits=[
            "A store sells a jacket for $80.00. During a sale the price is reduced by 25%. Tom "
            "buys 2 jackets on sale. How much does Tom pay?",
            "A shop sells a jacket for $80. During a sale the price is reduced by 25%. Tom buys "
            "2 jackets on sale. How much does Tom pay?",
        ],
        rephrase="Tom picks up 2 jackets during a sale that takes 25% off the usual price of $80 "
        "per jacket. What is the total amount Tom spends?",
        new_numbers="A store sells a jacket for $120. During a sale the price is reduced by 15%. "
        "Tom buys 3 jackets on sale. How much does Tom pay?",
        distinct=[
            "A class of 25 students goes on a trip. Each student pays $80, and the school adds "
            "$2 per student for snacks. How much is spent in total?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Emma has 48 cupcakes. She puts them into boxes of 6 and sells each box for $9. How "
        "much money does she make if she sells all the boxes?",
        answer="48 / 6 = 8 boxes. 8 * 9 = 72. #### 72",
        edits=[
            "Emma has 48 cupcakes. She puts them into boxes of 6 and sells each box for $9. How "
            "much money does she make if she sells all of the boxes?",
            "Emma has 48 cupcakes.She puts them into boxes of 6 and sells each box for $9.How "
            "much money does she make if she sells all the boxes?",
        ],
        rephrase="After packing her 48 cupcakes in boxes holding 6 each, Emma sells every box "
        "at $9. What are her total earnings once all boxes are sold?",
        new_numbers="Emma has 60 cupcakes. She puts them into boxes of 4 and sells each box for "
        "$7. How much money does she make if she sells all the boxes?",
        distinct=[
            "A parking lot has 48 rows with 6 cars in each row, and 9 cars leave. How many cars "
            "remain in the lot?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A garden is 15 meters long and 8 meters wide. Sam wants to put a fence around it. "
        "Fencing costs $12 per meter. How much will the fence cost?",
        answer="Perimeter 2 * (15 + 8) = 46. 46 * 12 = 552. #### 552",
        edits=[
            "A garden is 15 meters long and 8 meters wide. Sam wants to build a fence around it. "
            "Fencing costs $12 per meter. How much will the fence cost?",
            "A garden is 15 m long and 8 m wide. Sam wants to put a fence around it. Fencing "
            "costs $12 per meter. How much will the fence cost?",
        ],
        rephrase="Sam is fencing a rectangular garden measuring 15 meters by 8 meters. If each "
        "meter of fencing is $12, what is the total cost of enclosing the garden?",
        new_numbers="A garden is 20 meters long and 11 meters wide. Sam wants to put a fence "
        "around it. Fencing costs $9 per meter. How much will the fence cost?",
        distinct=[
            "A bookshelf has 15 books on the top shelf, 8 on the middle shelf and 12 on the "
            "bottom shelf. How many books are on the bookshelf?",
        ],
        hard_negatives=[
            "A tank is 15 meters long, 8 meters wide and 12 meters deep. What is its volume in "
            "cubic meters?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Jacob earns $15 per hour at his job. He works 6 hours on Saturday and 4 hours on "
        "Sunday. He spends $40 on a video game. How much money does he have left?",
        answer="15 * 10 = 150. 150 - 40 = 110. #### 110",
        edits=[
            "Jacob earns $15 an hour at his job. He works 6 hours on Saturday and 4 hours on "
            "Sunday. He spends $40 on a video game. How much money does he have left?",
            "Jacob earns $15 per hour at his job. He works 6 hours on Saturday and 4 hours on "
            "Sunday. He then spends $40 on a new video game. How much money does he have left?",
        ],
        rephrase="Working at $15 an hour, Jacob puts in 6 hours on Saturday plus 4 hours on "
        "Sunday, then buys a video game costing $40. What amount of money remains?",
        new_numbers="Jacob earns $12 per hour at his job. He works 5 hours on Saturday and 7 "
        "hours on Sunday. He spends $30 on a video game. How much money does he have left?",
        distinct=[
            "A theater has 15 rows. There are 6 seats in each of the first 4 rows and 40 seats "
            "in the balcony. How many seats are in the first 4 rows?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="There are 30 students in a class. Two fifths of them walk to school, and one third "
        "of the rest take the bus. The others are driven by their parents. How many "
        "students are driven?",
        answer="12 walk, 18 left, 6 take the bus, 12 are driven. #### 12",
        edits=[
            "There are 30 students in a class. Two fifths of them walk to school, and one third "
            "of the rest ride the bus. The others are driven by their parents. How many "
            "students are driven?",
            "There are 30 students in the class. Two fifths of them walk to school and one third "
            "of the rest take the bus; the others are driven by their parents. How many "
            "students are driven?",
        ],
        rephrase="In a class of 30 students, two fifths walk to school. Of the remaining "
        "students, one third take the bus, and everyone else gets a ride from a parent. How "
        "many students get a ride?",
        new_numbers="There are 45 students in a class. Two fifths of them walk to school, and one "
        "third of the rest take the bus. The others are driven by their parents. How many "
        "students are driven?",
        distinct=[
            "A pizza is cut into 30 slices. Two friends eat one third of it, and the rest is "
            "shared by 5 cousins. How many slices does each cousin get?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A farmer collects 156 eggs and packs them in cartons of 12. He sells each carton "
        "for $4.50. How much money does he get for all the cartons?",
        answer="156 / 12 = 13. 13 * 4.5 = 58.5. #### 58.5",
        edits=[
            "A farmer collects 156 eggs and packs them in cartons of 12. He sells each carton "
            "for $4.5. How much money does he get for all the cartons?",
            "A farmer collects 156 eggs and packs them in cartons of a dozen. He sells each "
            "carton for $4.50. How much money does he get for all the cartons?",
        ],
        rephrase="Packing 156 eggs into cartons that hold 12 each, a farmer sells every carton "
        "for $4.50. What is his total income from the cartons?",
        new_numbers="A farmer collects 144 eggs and packs them in cartons of 6. He sells each "
        "carton for $2.25. How much money does he get for all the cartons?",
        distinct=[
            "A choir has 156 singers standing in 12 equal rows. How many singers stand in each "
            "row if 4.50 percent of them are absent?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Chloe's phone battery is at 80%. Using the map app drains 2% of the battery every "
        "5 minutes. How many minutes can she use the map before the battery reaches 20%?",
        answer="60% / 2% = 30 intervals. 30 * 5 = 150. #### 150",
        edits=[
            "Chloe's phone battery is at 80 percent. Using the map app drains 2 percent of the "
            "battery every 5 minutes. How many minutes can she use the map before the battery "
            "reaches 20 percent?",
            "Chloe's phone battery is at 80%. Using the map app drains 2% of the battery every "
            "5 minutes. How many minutes can she use the map app before the battery reaches "
            "20%?",
        ],
        rephrase="A map app uses up 2% of Chloe's phone battery every 5 minutes. Starting from "
        "80%, for how long can she keep the app running until the charge falls to 20%?",
        new_numbers="Chloe's phone battery is at 90%. Using the map app drains 3% of the battery "
        "every 4 minutes. How many minutes can she use the map before the battery reaches 30%?",
        distinct=[
            "A jar holds 80 marbles, and 20 are red. Every 5 minutes, 2 marbles are taken out. "
            "How many marbles are left after an hour?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Mr. Lee drives 240 miles on 8 gallons of gas. How many gallons of gas will he need "
        "to drive 450 miles?",
        answer="240 / 8 = 30 miles per gallon. 450 / 30 = 15. #### 15",
        edits=[
            "Mr Lee drives 240 miles on 8 gallons of gas. How many gallons of gas will he need "
            "to drive 450 miles?",
            "Mr. Lee drives 240 miles on eight gallons of gas. How many gallons of gas will he "
            "need to drive 450 miles?",
        ],
        rephrase="Using 8 gallons of gas, Mr. Lee covers 240 miles. At the same rate, how much "
        "gas would a 450-mile trip require, in gallons?",
        new_numbers="Mr. Lee drives 300 miles on 12 gallons of gas. How many gallons of gas will "
        "he need to drive 500 miles?",
        distinct=[
            "A factory makes 240 toys in 8 hours. How many toys does it make in a 450-minute "
            "shift?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A movie theater sold 320 tickets on Friday. On Saturday it sold twice as many as "
        "on Friday, and on Sunday it sold 150 fewer than on Saturday. How many tickets did "
        "it sell over the three days?",
        answer="Sat 640, Sun 490, total 320 + 640 + 490 = 1450. #### 1450",
        edits=[
            "A movie theater sold 320 tickets on Friday. On Saturday it sold twice as many as "
            "on Friday, and on Sunday it sold 150 fewer than on Saturday. How many tickets did "
            "it sell over these three days?",
            "A movie theatre sold 320 tickets on Friday. On Saturday it sold twice as many as on "
            "Friday, and on Sunday it sold 150 fewer than on Saturday. How many tickets did it "
            "sell over the three days?",
        ],
        rephrase="On Friday a cinema sold 320 tickets. Saturday's sales were double Friday's, "
        "while Sunday's were 150 below Saturday's. What is the total number of tickets sold "
        "across the three days?",
        new_numbers="A movie theater sold 250 tickets on Friday. On Saturday it sold twice as "
        "many as on Friday, and on Sunday it sold 120 fewer than on Saturday. How many "
        "tickets did it sell over the three days?",
        distinct=[
            "A bakery baked 320 rolls in the morning and sold 150 of them before noon. How "
            "many rolls were left for the afternoon?",
        ],
        hard_negatives=[
            "A school collected 320 cans on Friday and 150 cans on Saturday. How many tickets "
            "to the fair can it buy if each ticket costs twice as many cans as there are days "
            "in a week?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Sophie saves $25 every week. She wants to buy a bicycle that costs $340 and she "
        "already has $90. How many weeks does she need to save?",
        answer="340 - 90 = 250. 250 / 25 = 10. #### 10",
        edits=[
            "Sophie saves $25 every week. She wants to buy a bike that costs $340 and she "
            "already has $90. How many weeks does she need to save?",
            "Sophie saves $25 each week. She wants to buy a bicycle that costs $340, and she "
            "already has $90. How many weeks does she need to save?",
        ],
        rephrase="A bicycle Sophie wants is priced at $340. She has $90 so far and puts aside "
        "$25 a week. After how many weeks will she have enough?",
        new_numbers="Sophie saves $30 every week. She wants to buy a bicycle that costs $410 and "
        "she already has $50. How many weeks does she need to save?",
        distinct=[
            "A bicycle shop has 25 bikes, sells 90 helmets and orders 340 tires. How many more "
            "tires than helmets did it handle?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A recipe uses 3 cups of flour for every 2 cups of sugar. Mia wants to use 18 cups "
        "of flour. How many cups of sugar does she need?",
        answer="18 / 3 = 6. 6 * 2 = 12. #### 12",
        edits=[
            "A recipe uses 3 cups of flour for every 2 cups of sugar. Mia wants to use 18 cups "
            "of flour. How many cups of sugar will she need?",
            "A recipe uses three cups of flour for every two cups of sugar. Mia wants to use 18 "
            "cups of flour. How many cups of sugar does she need?",
        ],
        rephrase="The ratio of flour to sugar in a recipe is 3 cups to 2 cups. If Mia puts in 18 "
        "cups of flour, what amount of sugar, in cups, should she add?",
        new_numbers="A recipe uses 5 cups of flour for every 3 cups of sugar. Mia wants to use "
        "20 cups of flour. How many cups of sugar does she need?",
        distinct=[
            "Mia has 18 apples and 3 friends. She keeps 2 apples and shares the rest equally. "
            "How many apples does each friend get?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="A parking garage charges $5 for the first hour and $3 for each additional hour. "
        "Kevin parks for 7 hours. How much does he pay?",
        answer="5 + 6 * 3 = 23. #### 23",
        edits=[
            "A parking garage charges $5 for the first hour and $3 for every additional hour. "
            "Kevin parks for 7 hours. How much does he pay?",
            "A parking garage charges $5 for the first hour and $3 for each additional hour. "
            "Kevin parks there for 7 hours. How much does he pay in total?",
        ],
        rephrase="Kevin leaves his car in a garage for 7 hours. The first hour costs $5 and "
        "every hour after that costs $3. What is his parking fee?",
        new_numbers="A parking garage charges $8 for the first hour and $2 for each additional "
        "hour. Kevin parks for 5 hours. How much does he pay?",
        distinct=[
            "Lucy plants 5 tulips, 3 roses and 7 daisies in her flower bed. How many flowers "
            "did she plant altogether?",
        ],
        hard_negatives=[
            "A gym charges $5 per class. Kevin takes 3 classes a week for 7 weeks. How much does "
            "he pay for the classes?",
        ],
    ),
    dict(
        kind="gsm8k",
        test="Nora has a collection of 64 seashells. She gives a quarter of them to her cousin "
        "and then finds 17 more on the beach. How many seashells does she have now?",
        answer="64 / 4 = 16. 64 - 16 = 48. 48 + 17 = 65. #### 65",
        edits=[
            "Nora has a collection of 64 seashells. She gives a quarter of them to her cousin "
            "and then finds 17 more at the beach. How many seashells does she have now?",
            "Nora has a collection of 64 sea shells. She gives a quarter of them to her cousin "
            "and then finds 17 more on the beach. How many sea shells does she have now?",
        ],
        rephrase="Out of her 64 seashells, Nora hands a quarter to her cousin. Later she picks up "
        "17 more on the beach. What is the size of her collection now?",
        new_numbers="Nora has a collection of 80 seashells. She gives a quarter of them to her "
        "cousin and then finds 23 more on the beach. How many seashells does she have now?",
        distinct=[
            "A box holds 64 crayons. There are 17 boxes on a shelf. How many crayons are on the "
            "shelf?",
        ],
    ),
    dict(
        kind="math",
        test="What is the value of $x$ if $3x + 7 = 31$?",
        answer="$3x = 24$, so $x = \\boxed{8}$.",
        edits=[
            "What is the value of \\(x\\) if \\(3x + 7 = 31\\)?",
            "What is the value of $x$ if $3x+7=31$?",
        ],
        rephrase="Solve the equation $3x + 7 = 31$ for $x$.",
        new_numbers="What is the value of $x$ if $5x + 4 = 29$?",
        distinct=[
            "What is the value of $y$ if $y^2 = 49$ and $y > 0$?",
        ],
    ),
    dict(
        kind="math",
        test="Compute $\\dbinom{10}{3}$.",
        answer="$\\dbinom{10}{3} = \\frac{10 \\cdot 9 \\cdot 8}{6} = \\boxed{120}$.",
        edits=[
            "Compute $\\binom{10}{3}$.",
            "Please compute $\\dbinom{10}{3}$ and explain each step.",
        ],
        rephrase="How many ways are there to choose 3 objects from 10 distinct objects?",
        new_numbers=None,  # "compute # #": under 10 words, a masked n-gram would be any problem
        distinct=[
            "Compute $\\dbinom{7}{2}$.",
        ],
    ),
    dict(
        kind="math",
        test="The sum of two numbers is $45$ and their difference is $9$. What is the larger of "
        "the two numbers?",
        answer="The larger number is $\\frac{45 + 9}{2} = \\boxed{27}$.",
        edits=[
            "The sum of two numbers is 45 and their difference is 9. What is the larger of the "
            "two numbers?",
            "The sum of two numbers is $45$, and their difference is $9$. Find the larger of "
            "the two numbers.",
        ],
        rephrase="Two numbers add up to $45$, and one exceeds the other by $9$. Which value is "
        "the bigger number?",
        new_numbers="The sum of two numbers is $38$ and their difference is $12$. What is the "
        "larger of the two numbers?",
        distinct=[
            "A bus has $45$ seats and $9$ of them are empty. How many passengers are riding the "
            "bus?",
        ],
        hard_negatives=[
            "The product of two numbers is $45$ and one of them is $9$. What is the sum of the "
            "two numbers?",
        ],
    ),
    dict(
        kind="math",
        test="A right triangle has legs of length $6$ and $8$. What is the length of its "
        "hypotenuse?",
        answer="$\\sqrt{6^2 + 8^2} = \\boxed{10}$.",
        edits=[
            "A right triangle has legs of lengths $6$ and $8$. What is the length of its "
            "hypotenuse?",
            "A right triangle has legs of length 6 and 8. What is the length of the "
            "hypotenuse?",
        ],
        rephrase="The two shorter sides of a right triangle measure $6$ and $8$. How long is the "
        "longest side?",
        new_numbers="A right triangle has legs of length $5$ and $12$. What is the length of its "
        "hypotenuse?",
        distinct=[
            "Paul walks $6$ blocks to school and $8$ blocks back home by another route. How "
            "many blocks does he walk in all?",
        ],
        hard_negatives=[
            "A rectangle has sides of length $6$ and $8$. What is its area?",
        ],
    ),
    dict(
        kind="math",
        test="If $f(x) = 2x^2 - 5x + 3$, what is $f(4)$?",
        answer="$f(4) = 32 - 20 + 3 = \\boxed{15}$.",
        edits=[
            "If $f(x)=2x^2-5x+3$, what is $f(4)$?",
            "If \\(f(x) = 2x^{2} - 5x + 3\\), what is \\(f(4)\\)?",
        ],
        rephrase="Evaluate the function $f(x) = 2x^2 - 5x + 3$ at $x = 4$.",
        new_numbers="If $f(x) = 3x^2 - 4x + 1$, what is $f(5)$?",
        distinct=[
            "If $g(x) = 4x - 2$, what is $g(5)$?",
        ],
    ),
    dict(
        kind="math",
        test="What is $\\frac{3}{4}$ of $240$?",
        answer="$\\frac{3}{4} \\cdot 240 = \\boxed{180}$.",
        edits=[
            "What is \\(\\tfrac{3}{4}\\) of 240?",
            "What is $3/4$ of $240$?",
        ],
        rephrase="Find three quarters of $240$.",
        new_numbers=None,  # under 10 words, as above
        distinct=[
            "A tank holds $240$ liters of water. It leaks $3$ liters in the first hour and $4$ "
            "liters in the second hour. How much water is left?",
        ],
        hard_negatives=[
            "What is $240$ divided by $4$, plus $3$?",
        ],
    ),
]
